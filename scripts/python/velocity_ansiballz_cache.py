"""Compiled-code cache for Ansible modules run from their AnsiballZ zip.

Ansible runs every module task as a new Python process that imports the module
and its module_utils (ansible.module_utils.basic and its imports, our own
module_utils) from a zip written for that task. Python's zipimport never caches
bytecode, so each task compiles all of that source again, and Python 3.11's
zipimporter compiles each file twice (once only to tell its file name): on this
project's machine about a fifth of a module process's CPU (velocity.platform.k8s_read
0.73 s without the cache, 0.57 s with it; ansible.builtin.ping 0.19 s and 0.15 s).

scripts/venv.sh installs this file into the project's venv with a .pth line
that calls install() at interpreter start-up. install() puts a zipimporter
subclass in sys.path_hooks which, for AnsiballZ payload archives only
(``ansible_<module>_payload.zip``), keeps compiled code in a content-addressed
cache: the key is the SHA-256 of the Python bytecode magic, the optimisation
level, the file's path inside the zip and its source. The same source always
maps to the same code, so an entry never goes stale, and a changed source is a
new key. Only module source is cached: AnsiballZ passes the task's arguments
outside the zip, so no argument value reaches the cache.

The same cache serves the controller's side: Ansible's collection loader
(``ansible.utils.collection_loader``) compiles every collection plugin and
module_utils it imports in ansible-playbook itself (action and callback plugins,
filters) from source, in every run, and never keeps bytecode. install() also
puts a meta path finder in front that waits for that loader module to be
imported and then gives its ``get_code`` the same content-addressed cache (the
key uses the file's path on disk): on this project's machine 15 ms of compiling
per ansible-playbook run that uses velocity.platform.vault_secrets.

The cache is used only if its directory belongs to the user and nobody else can
write to it. Every failure of the cache (unwritable directory, truncated or
corrupt entry, unexpected archive layout) falls back to zipimport's own compile: the cache can
make a task faster, never make it fail. VELOCITY_ANSIBALLZ_CACHE=0 turns it off
(for a side-by-side measurement); VELOCITY_ANSIBALLZ_CACHE=<absolute dir> moves it.
"""

import os
import sys
import zipimport

_ENV = "VELOCITY_ANSIBALLZ_CACHE"
_HEADER = b"VELOCITY-ANSIBALLZ-PYC-1\n"


def _is_payload(archive):
    name = os.path.basename(archive)
    return name.startswith("ansible_") and name.endswith("_payload.zip")


def _trusted(cache_dir):
    """Load code only from a directory this user owns and nobody else can write (as a venv's own files)."""
    try:
        st = os.stat(cache_dir)
    except FileNotFoundError:
        return True  # created by this user on the first write
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


class CachingZipImporter(zipimport.zipimporter):
    """zipimporter whose get_code() keeps compiled AnsiballZ payload code in a cache directory."""

    cache_dir = None
    _checked = False

    def _use_cache(self):
        return CachingZipImporter.cache_usable() and _is_payload(self.archive)

    @classmethod
    def cache_usable(cls):
        if cls.cache_dir is not None and not cls._checked:
            cls._checked = True
            if not _trusted(cls.cache_dir):
                cls.cache_dir = None
        return cls.cache_dir is not None

    def get_code(self, fullname):
        if not self._use_cache():
            return super().get_code(fullname)
        try:
            inner = self._inner_path(fullname)
            source = self.get_data(os.path.join(self.archive, inner))
        except (OSError, ImportError):
            # Not a plain source module of this archive (bytecode, namespace, missing): zipimport decides.
            return super().get_code(fullname)
        return _cached_code(self.cache_dir, os.path.join(self.archive, inner), inner, source)

    def get_filename(self, fullname):
        # zipimporter.get_filename() compiles the module to learn its path (Python 3.11), and every import asks
        # for it (spec_from_loader): answered from the archive's table of contents instead.
        if not self._use_cache():
            return super().get_filename(fullname)
        try:
            inner = self._inner_path(fullname)
            self.get_data(os.path.join(self.archive, inner))
        except (OSError, ImportError):
            return super().get_filename(fullname)
        return os.path.join(self.archive, inner)

    def _inner_path(self, fullname):
        base = self.prefix + fullname.rpartition(".")[2]
        if self.is_package(fullname):
            return base + "/__init__.py"
        return base + ".py"


def _cached_code(cache_dir, path, inner, source):
    import hashlib
    import importlib.util
    import marshal

    source = source.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    digest = hashlib.sha256()
    for part in (importlib.util.MAGIC_NUMBER, str(sys.flags.optimize).encode(), inner.encode(), source):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    key = digest.hexdigest()
    entry = os.path.join(cache_dir, key[:2], key[2:] + ".pyc")
    code = None
    try:
        with open(entry, "rb") as handle:
            data = handle.read()
        if data.startswith(_HEADER + key.encode() + b"\n"):
            # Trusted as the venv's own files are: an entry this user wrote into a directory only it can write.
            code = marshal.loads(data[len(_HEADER) + len(key) + 1 :])  # noqa: S302
    except (OSError, EOFError, ValueError, TypeError):
        code = None
    if code is not None and hasattr(code, "co_filename"):
        # The entry was compiled in another task's temporary directory: name this task's file in tracebacks.
        fix = getattr(__import__("_imp"), "_fix_co_filename", None)
        if fix is not None:
            fix(code, path)
            return code
    code = compile(source, path, "exec", dont_inherit=True)
    _store(entry, _HEADER + key.encode() + b"\n" + marshal.dumps(code))
    return code


def _store(entry, data):
    import tempfile

    try:
        os.makedirs(os.path.dirname(entry), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(entry), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # an unwritable cache only costs the compile, as without the cache


_COLLECTION_FINDER = "ansible.utils.collection_loader._collection_finder"


class _CollectionLoaderHook:
    """A meta path finder that answers for nothing: it notices when Ansible's collection loader module is about
    to be imported and has it loaded by a loader that, once the module has run, gives it the cache."""

    done = False

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if cls.done or fullname != _COLLECTION_FINDER:
            return None
        cls.done = True
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        # Only a plain source file's loader (one object per module) is wrapped; anything else loads as it would.
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader:
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader:
    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _patch_collection_loader(module)


def _patch_collection_loader(module):
    """Give the collection loader's get_code the cache; any surprise leaves the loader as it is."""
    base = getattr(module, "_AnsibleCollectionPkgLoaderBase", None)
    original = getattr(base, "get_code", None)
    if original is None or not hasattr(base, "get_source") or not hasattr(base, "get_filename"):
        return

    def get_code(self, fullname):
        if getattr(self, "_compiled_code", None) or not CachingZipImporter.cache_usable():
            return original(self, fullname)
        try:
            filename = self.get_filename(fullname)
            source = self.get_source(fullname)
        except Exception:  # the loader's own path reports it
            return original(self, fullname)
        # The loader reads the file as bytes (and answers '' for a package without __init__.py): nothing to cache.
        if not filename or not isinstance(source, bytes) or not source or not os.path.isabs(filename):
            return original(self, fullname)
        self._compiled_code = _cached_code(CachingZipImporter.cache_dir, filename, filename, source)
        return self._compiled_code

    base.get_code = get_code


def install(default_dir=None):
    """Put CachingZipImporter in place of zipimporter in sys.path_hooks.

    The cache is default_dir, else ``ansiballz-pyc`` in the running environment (sys.prefix: the venv)."""
    if default_dir is None:
        default_dir = os.path.join(sys.prefix, "ansiballz-pyc")
    setting = os.environ.get(_ENV, "").strip()
    if setting.lower() in ("0", "off", "false", "no"):
        return
    # Only an absolute path moves the cache: a module's working directory is whatever the task's is.
    CachingZipImporter.cache_dir = setting if os.path.isabs(setting) else default_dir
    CachingZipImporter._checked = False
    if _CollectionLoaderHook not in sys.meta_path and _COLLECTION_FINDER not in sys.modules:
        sys.meta_path.insert(0, _CollectionLoaderHook)
    hooks = sys.path_hooks
    for index, hook in enumerate(hooks):
        if hook is zipimport.zipimporter:
            hooks[index] = CachingZipImporter
            break
    else:
        return
    # Forget any zip importer created before (none at start-up; harmless otherwise).
    for path, finder in list(sys.path_importer_cache.items()):
        if type(finder) is zipimport.zipimporter:
            del sys.path_importer_cache[path]
