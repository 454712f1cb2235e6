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
per ansible-playbook run that uses velocity.platform.vault_secrets. And it keeps, per source file, the
import statements that ansible-playbook's AnsiballZ builder (``ansible.executor.module_common``) parses
every module and module_util into a full syntax tree to find, in every task (see "the AnsiballZ
builder's import scan" below).

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
    import importlib.util

    source = source.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    key, entry = _entry(cache_dir, (importlib.util.MAGIC_NUMBER, str(sys.flags.optimize).encode(), inner.encode(),
                                    source), ".pyc")
    code = _load(entry, _HEADER, key)
    if code is not None and hasattr(code, "co_filename"):
        # The entry was compiled in another task's temporary directory: name this task's file in tracebacks.
        fix = getattr(__import__("_imp"), "_fix_co_filename", None)
        if fix is not None:
            fix(code, path)
            return code
    code = compile(source, path, "exec", dont_inherit=True)
    _save(entry, _HEADER, key, code)
    return code


def _entry(cache_dir, parts, suffix):
    """(key, path) of the cache entry for ``parts``: SHA-256 over each part with its length."""
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    key = digest.hexdigest()
    return key, os.path.join(cache_dir, key[:2], key[2:] + suffix)


def _load(entry, header, key):
    """The object stored in ``entry`` under ``header`` and ``key``, or None (missing, truncated, corrupt)."""
    import marshal

    try:
        with open(entry, "rb") as handle:
            data = handle.read()
        if data.startswith(header + key.encode() + b"\n"):
            # Trusted as the venv's own files are: an entry this user wrote into a directory only it can write.
            return marshal.loads(data[len(header) + len(key) + 1 :])  # noqa: S302
    except (OSError, EOFError, ValueError, TypeError):
        pass
    return None


def _save(entry, header, key, value):
    import marshal

    _store(entry, header + key.encode() + b"\n" + marshal.dumps(value))


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
_MODULE_COMMON = "ansible.executor.module_common"


class _CollectionLoaderHook:
    """A meta path finder that answers for nothing: it notices when one of the Ansible modules it patches
    (the collection loader, the AnsiballZ builder) is about to be imported and has it loaded by a loader
    that, once the module has run, gives it the cache."""

    done = set()

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname not in _PATCHES or fullname in cls.done:
            return None
        cls.done.add(fullname)
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
        _PATCHES[module.__name__](module)


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


# -- the AnsiballZ builder's import scan -----------------------------------------------------------------------
#
# To build a module's AnsiballZ payload, ansible-playbook parses the module and every module_util it imports
# into a full syntax tree (module_common._compile_module_ast), only to find their imports
# (ModuleDepFinder), in every task of every run: for velocity.platform.manifest_apply some 70 files and
# 0.13 s of parsing per task. What the scan reads of a tree is small: the import statements, each either at
# the top of the module (required) or nested anywhere (optional), and a top-level METADATA assignment. The
# patched _compile_module_ast keeps that skeleton in the cache, keyed by the source, the Python version and
# the ansible-core version, and rebuilds a tree holding just those statements: same imports, same
# required/optional split, so the scan finds the same files. A module with METADATA, a file that does not
# parse (its error is Ansible's own) or anything unexpected takes the full parse.

_SKELETON_HEADER = b"VELOCITY-ANSIBALLZ-SKELETON-1\n"


def _import_statements(tree):
    """[(top_level, node)] for every Import/ImportFrom that ModuleDepFinder visits (through list fields only)."""
    import ast

    found = []

    def walk(node):
        for _field, value in ast.iter_fields(node):
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, (ast.Import, ast.ImportFrom)):
                        found.append((node is tree, item))
                    elif isinstance(item, ast.AST):
                        walk(item)

    walk(tree)
    return found


def _skeleton_of(tree):
    """A marshal-able description of the imports, or None when the tree has what only a full parse serves."""
    import ast

    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "METADATA" for t in node.targets):
            return None
    out = []
    for top, node in _import_statements(tree):
        names = tuple((alias.name, alias.asname) for alias in node.names)
        if isinstance(node, ast.Import):
            out.append((top, "import", None, 0, names))
        else:
            out.append((top, "from", node.module, node.level, names))
    return tuple(out)


def _tree_of(skeleton):
    import ast

    top, nested = [], []
    for is_top, kind, module, level, names in skeleton:
        aliases = [ast.alias(name=name, asname=asname) for name, asname in names]
        node = ast.Import(names=aliases) if kind == "import" else ast.ImportFrom(module=module, names=aliases,
                                                                                   level=level)
        (top if is_top else nested).append(node)
    if nested:
        # Nested imports are optional to the scan because their parent is not the module: one If holds them all.
        top.append(ast.If(test=ast.Constant(value=True), body=nested, orelse=[]))
    return ast.Module(body=top, type_ignores=[])


def _patch_module_common(module):
    """Give module_common._compile_module_ast the skeleton cache; any surprise leaves it as it is."""
    original = getattr(module, "_compile_module_ast", None)
    if original is None or not hasattr(module, "ModuleDepFinder"):
        return
    try:
        from ansible.release import __version__ as ansible_version
    except ImportError:
        return

    def _compile_module_ast(module_name, source_code):
        if not CachingZipImporter.cache_usable():
            return original(module_name, source_code)
        try:
            source = source_code.encode("utf-8", "surrogateescape") if isinstance(source_code, str) else bytes(source_code)
        except (TypeError, ValueError):
            return original(module_name, source_code)
        key, entry = _entry(CachingZipImporter.cache_dir,
                            (_SKELETON_HEADER, sys.version.encode(), ansible_version.encode(), source), ".skel")
        skeleton = _load(entry, _SKELETON_HEADER, key)
        if skeleton is not None:
            try:
                return _tree_of(skeleton)
            except (TypeError, ValueError):  # an entry of another shape: parsed again and rewritten below
                pass
        tree = original(module_name, source_code)  # raises Ansible's own error for a file that does not parse
        try:
            skeleton = _skeleton_of(tree)
        except Exception:  # an unexpected tree: used as it is, not cached
            return tree
        if skeleton is not None:
            _save(entry, _SKELETON_HEADER, key, skeleton)
        return tree

    module._compile_module_ast = _compile_module_ast


_PATCHES = {_COLLECTION_FINDER: _patch_collection_loader, _MODULE_COMMON: _patch_module_common}


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
    if _CollectionLoaderHook not in sys.meta_path and not all(name in sys.modules for name in _PATCHES):
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
