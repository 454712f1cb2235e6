"""The compiled-code cache for AnsiballZ payloads (scripts/python/velocity_ansiballz_cache.py).

Each case imports from a real zip in a fresh interpreter (python -S, so the copy scripts/venv.sh
installed into the venv stays out of it) with the checkout's module installed by hand, and counts
the calls to compile(): a cache hit compiles nothing, anything the cache cannot use falls back to
compiling, and nothing outside an AnsiballZ payload archive is touched. The last cases run real
Ansible modules through the project's venv, where scripts/venv.sh installed the hook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOK_DIR = ROOT / "scripts" / "python"

FILES = {
    "demo/__init__.py": "VALUE = 41\n",
    "demo/fail.py": "def boom():\n    raise RuntimeError('boom')\n",
    "demo_top.py": "from demo import VALUE\nANSWER = VALUE + 1\n",
}
ALL_FILES = {"__init__.py", "fail.py", "demo_top.py"}

# Counts the compile() calls of the child it is put in.
COUNT_COMPILES = """
calls = []
real_compile = builtins.compile
def counting_compile(source, filename, *args, **kwargs):
    calls.append(str(filename))
    return real_compile(source, filename, *args, **kwargs)
builtins.compile = counting_compile
"""

# Runs in the child: install the hook from the checkout, count compile() calls, import, report.
CHILD = """
import builtins, json, os, sys, traceback
sys.path.insert(0, {hook_dir!r})
import velocity_ansiballz_cache
velocity_ansiballz_cache.install({cache_dir!r})
""" + COUNT_COMPILES + """sys.path.insert(0, {archive!r})
import demo_top
from demo import fail
try:
    fail.boom()
except RuntimeError:
    where = traceback.extract_tb(sys.exc_info()[2])[-1].filename
print(json.dumps({{"answer": demo_top.ANSWER, "compiled": calls, "traceback_file": where,
                  "hook": type(sys.path_importer_cache[{archive!r}]).__name__}}))
"""


def make_archive(directory: Path, name: str = "ansible_demo_payload.zip") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / name
    with zipfile.ZipFile(archive, "w") as handle:
        for inner, text in FILES.items():
            handle.writestr(inner, text)
    return archive


def run_child(archive: Path, cache_dir: Path, env: dict[str, str] | None = None) -> dict:
    code = CHILD.format(hook_dir=str(HOOK_DIR), cache_dir=str(cache_dir), archive=str(archive))
    child_env = {k: v for k, v in os.environ.items() if k != "VELOCITY_ANSIBALLZ_CACHE"}
    child_env.update(env or {})
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=child_env,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*.pyc")) if cache_dir.exists() else []


def test_a_second_task_compiles_nothing_and_names_its_own_files(tmp_path):
    cache = tmp_path / "cache"
    first = run_child(make_archive(tmp_path / "task1"), cache)
    assert first["answer"] == 42
    assert first["hook"] == "CachingZipImporter"
    # One compile per module (Python 3.11's zipimporter compiled each twice: once to learn its file name).
    assert sorted(Path(f).name for f in first["compiled"]) == ["__init__.py", "demo_top.py", "fail.py"]
    assert len(entries(cache)) == 3

    archive2 = make_archive(tmp_path / "task2")
    second = run_child(archive2, cache)
    assert second["answer"] == 42
    assert second["compiled"] == []
    # Tracebacks name this task's archive, not the one the cached code was compiled in.
    assert second["traceback_file"] == str(archive2 / "demo" / "fail.py")
    assert len(entries(cache)) == 3


def test_a_changed_source_is_a_new_entry(tmp_path):
    cache = tmp_path / "cache"
    run_child(make_archive(tmp_path / "task1"), cache)
    archive = tmp_path / "task2" / "ansible_demo_payload.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as handle:
        for inner, text in FILES.items():
            handle.writestr(inner, text.replace("41", "99") if inner == "demo/__init__.py" else text)
    changed = run_child(archive, cache)
    assert changed["answer"] == 100
    assert [Path(f).name for f in changed["compiled"]] == ["__init__.py"]
    assert len(entries(cache)) == 4


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_entry_is_compiled_again_and_rewritten(tmp_path, damage):
    cache = tmp_path / "cache"
    run_child(make_archive(tmp_path / "task1"), cache)
    for entry in entries(cache):
        data = entry.read_bytes()
        entry.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(64), "empty": b""}[damage])
    again = run_child(make_archive(tmp_path / "task2"), cache)
    assert again["answer"] == 42
    assert len(again["compiled"]) == 3
    third = run_child(make_archive(tmp_path / "task3"), cache)
    assert third["compiled"] == []


def test_an_unwritable_cache_only_costs_the_compile(tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would go\n")
    result = run_child(make_archive(tmp_path / "task1"), blocked / "cache")
    assert result["answer"] == 42
    assert {Path(f).name for f in result["compiled"]} == ALL_FILES
    assert blocked.read_text() == "a file where the cache directory would go\n"


def test_a_cache_directory_others_can_write_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    run_child(make_archive(tmp_path / "task1"), cache)
    cache.chmod(0o777)
    result = run_child(make_archive(tmp_path / "task2"), cache)
    assert result["answer"] == 42
    assert {Path(f).name for f in result["compiled"]} == ALL_FILES  # its entries were not loaded


def test_zips_other_than_ansiballz_payloads_are_left_to_zipimport(tmp_path):
    cache = tmp_path / "cache"
    result = run_child(make_archive(tmp_path / "task1", name="library.zip"), cache)
    assert result["answer"] == 42
    assert entries(cache) == []


def test_turned_off_by_the_environment(tmp_path):
    cache = tmp_path / "cache"
    result = run_child(make_archive(tmp_path / "task1"), cache, env={"VELOCITY_ANSIBALLZ_CACHE": "0"})
    assert result["answer"] == 42
    assert result["hook"] == "zipimporter"
    assert entries(cache) == []


def test_the_project_venv_runs_with_the_checkouts_hook():
    installed = subprocess.run([sys.executable, "-c", "import sys, velocity_ansiballz_cache as m; "
                                "print(sys.path_hooks[0].__name__); print(m.__file__)"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert installed[0] == "CachingZipImporter"
    assert Path(installed[1]).read_bytes() == (HOOK_DIR / "velocity_ansiballz_cache.py").read_bytes()


def test_real_modules_fill_the_cache_once_and_no_argument_reaches_it(tmp_path):
    """Two runs of a playbook of real modules: the first fills the cache, the second adds nothing; a canary
    passed as a module argument (and a no_log one) is in no cache file."""
    cache = tmp_path / "cache"
    canary = f"CANARY-{uuid.uuid4().hex}"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.ping: {{data: '{canary}'}}\n"
        f"    - ansible.builtin.stat: {{path: '/tmp/{canary}'}}\n"
        f"      no_log: true\n")
    env = {**os.environ, "VELOCITY_ANSIBALLZ_CACHE": str(cache), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    ansible_playbook = str(Path(sys.executable).parent / "ansible-playbook")
    first = subprocess.run([ansible_playbook, str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert first.returncode == 0, first.stdout[-3000:]
    filled = entries(cache)
    assert len(filled) > 20, filled  # ansible.module_utils.basic and its imports, the two modules
    second = subprocess.run([ansible_playbook, str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert second.returncode == 0, second.stdout[-3000:]
    assert entries(cache) == filled
    every_file = [p for p in cache.rglob("*") if p.is_file()]
    assert any(p.suffix == ".skel" for p in every_file)  # the import scan's entries are there too
    for entry in every_file:
        assert canary.encode() not in entry.read_bytes(), entry


# Runs in the child (the project's venv, where the .pth line installed the hook): Ansible's own collection
# loader imports a collection's module_utils, as ansible-playbook imports action and callback plugins.
COLLECTION_CHILD = """
import builtins, json, sys, traceback
""" + COUNT_COMPILES + """from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[{root!r}])._install()
from ansible_collections.demo.cached.plugins.module_utils import helper
try:
    helper.boom()
except RuntimeError:
    where = traceback.extract_tb(sys.exc_info()[2])[-1].filename
print(json.dumps({{"answer": helper.ANSWER, "compiled": [c for c in calls if "demo" in c], "traceback_file": where}}))
"""


def run_collection_child(root: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "VELOCITY_ANSIBALLZ_CACHE": str(cache_dir)}
    result = subprocess.run([sys.executable, "-c", COLLECTION_CHILD.format(root=str(root))], capture_output=True,
                            text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_collection_loader_compiles_a_plugin_once_then_reads_the_cache(tmp_path):
    """ansible-playbook compiles collection plugins from source in every run; with the hook, once."""
    root = tmp_path / "collections"
    helper = root / "ansible_collections" / "demo" / "cached" / "plugins" / "module_utils" / "helper.py"
    helper.parent.mkdir(parents=True)
    helper.write_text("ANSWER = 42\n\ndef boom():\n    raise RuntimeError('boom')\n")
    cache = tmp_path / "cache"
    first = run_collection_child(root, cache)
    assert first["answer"] == 42 and first["compiled"] == [str(helper)]
    assert len(entries(cache)) == 1
    second = run_collection_child(root, cache)
    assert second["answer"] == 42 and second["compiled"] == []
    assert second["traceback_file"] == str(helper)
    helper.write_text("ANSWER = 43\n\ndef boom():\n    raise RuntimeError('boom')\n")
    changed = run_collection_child(root, cache)
    assert changed["answer"] == 43 and changed["compiled"] == [str(helper)]
    assert len(entries(cache)) == 2


# Runs in the child (the project's venv, where the .pth line installed the hook): the import scan of
# ansible-playbook's AnsiballZ builder, as recursive_finder runs it, over real module and module_util sources
# and a few made-up corner cases. It prints, per file, what ModuleDepFinder found in the tree that the
# (patched) _compile_module_ast gave and in a full parse, and which files had a skeleton cached.
SCAN_CHILD = """
import ast, json, sys
from ansible.executor import module_common
paths = json.loads(sys.argv[1])
out = {}
for path in paths:
    with open(path, "rb") as handle:
        source = handle.read()
    fqn = "ansible_collections.demo.scan.plugins.module_utils.sub.thing"
    try:
        tree = module_common._compile_module_ast(fqn, source)
    except Exception as exc:
        out[path] = {"error": type(exc).__name__}
        continue
    full = compile(source, path, "exec", ast.PyCF_ONLY_AST)
    got, want = module_common.ModuleDepFinder(fqn, tree), module_common.ModuleDepFinder(fqn, full)
    out[path] = {"same": [sorted(got.submodules) == sorted(want.submodules),
                          sorted(got.optional_imports) == sorted(want.optional_imports)],
                 "submodules": len(want.submodules), "optional": len(want.optional_imports),
                 "skeleton": tree is not full and len(tree.body) != len(full.body)}
print(json.dumps(out))
"""

CORNER_CASES = {
    "nested.py": (
        "from __future__ import annotations\n"
        "import os\n"
        "from ansible.module_utils.basic import AnsibleModule\n"
        "from ..other import helper\n"
        "from . import sibling\n"
        "try:\n"
        "    from ansible.module_utils.six import _six\n"
        "    import ansible_collections.demo.scan.plugins.module_utils.optional_one\n"
        "except ImportError:\n"
        "    from ansible.module_utils.common.text import converters\n"
        "def later():\n"
        "    from ansible_collections.demo.scan.plugins.module_utils.lazy import thing\n"
        "    class Inner:\n"
        "        import ansible.module_utils.urls as urls\n"
        "    return thing\n"
        "with open(__file__) as handle:\n"
        "    from ansible.module_utils.common import validation\n"
    ),
    "metadata.py": "METADATA = '''schema_version: 1'''\nfrom ansible.module_utils.basic import AnsibleModule\n",
    "broken.py": "from ansible.module_utils.basic import (\n",
}


def run_scan_child(paths: list[str], cache_dir: Path) -> dict:
    env = {**os.environ, "VELOCITY_ANSIBALLZ_CACHE": str(cache_dir)}
    result = subprocess.run([sys.executable, "-c", SCAN_CHILD, json.dumps(paths)], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_ansiballz_import_scan_finds_the_same_imports_from_the_cached_skeleton(tmp_path):
    """ansible-playbook parses every module_util into a full tree to find its imports, in every task; with the
    hook, the second time only the imports are read back, and the scan finds exactly what the full parse finds
    (required and optional alike). A file with METADATA is not cached, a file that does not parse fails as
    Ansible fails it, every time."""
    collection = ROOT / "collections" / "ansible_collections" / "velocity" / "platform" / "plugins"
    import ansible.module_utils.basic as basic

    real = [*sorted(str(p) for p in (collection / "module_utils").rglob("*.py")),
            str(collection / "modules" / "manifest_apply.py"), str(collection / "modules" / "vault_secrets.py"),
            basic.__file__]
    for name, text in CORNER_CASES.items():
        (tmp_path / name).write_text(text)
    paths = real + [str(tmp_path / name) for name in CORNER_CASES]
    cache = tmp_path / "cache"
    first = run_scan_child(paths, cache)
    assert not any(entry.get("skeleton") for entry in first.values())  # nothing cached yet: full trees
    skeletons = sorted(cache.rglob("*.skel"))
    assert len(skeletons) == len(paths) - 2  # all but METADATA and the broken file
    second = run_scan_child(paths, cache)
    for path in paths[:-2]:
        assert second[path]["same"] == [True, True], path
    assert all(second[path]["skeleton"] for path in paths[:-2])
    nested = second[str(tmp_path / "nested.py")]
    assert nested["submodules"] >= 8 and nested["optional"] >= 5  # the corner cases really exercise both kinds
    assert second[str(tmp_path / "metadata.py")]["skeleton"] is False
    assert first[str(tmp_path / "broken.py")] == second[str(tmp_path / "broken.py")] == {"error": "AnsibleError"}
    assert sorted(cache.rglob("*.skel")) == skeletons


def test_a_module_payload_holds_the_same_files_with_the_skeleton_cache(tmp_path):
    """The AnsiballZ payload of a real module of ours, built by ansible-playbook with the cache off and then
    twice with it (filled, then read): the same module_utils files every time."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - velocity.platform.manifest_apply:\n"
        f"        kubeconfig: {tmp_path}/no-such-kubeconfig\n"
        "        definitions: [{apiVersion: v1, kind: ConfigMap, metadata: {name: x}}]\n"
        "      ignore_errors: true\n")
    ansible_playbook = str(Path(sys.executable).parent / "ansible-playbook")
    cache = tmp_path / "cache"

    def payload_files(setting: str) -> list[str]:
        remote = tmp_path / f"remote-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "VELOCITY_ANSIBALLZ_CACHE": setting, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
               "ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": str(remote), "ANSIBLE_PIPELINING": "0"}
        run = subprocess.run([ansible_playbook, str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300, check=False)
        assert run.returncode == 0, run.stdout[-3000:]
        [wrapper] = list(remote.rglob("AnsiballZ_manifest_apply.py"))
        subprocess.run([sys.executable, str(wrapper), "explode"], cwd=wrapper.parent, check=True, capture_output=True,
                       timeout=60)
        debug = wrapper.parent / "debug_dir"
        return sorted(str(p.relative_to(debug)) for p in debug.rglob("*.py"))

    without = payload_files("0")
    assert "ansible_collections/velocity/platform/plugins/module_utils/k8s/client.py" in without
    assert payload_files(str(cache)) == without
    assert len(list(cache.rglob("*.skel"))) > 20
    assert payload_files(str(cache)) == without
