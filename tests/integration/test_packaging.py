"""The collection as users get it: a tarball built and installed offline, and the AWX
execution environment's build context."""

from __future__ import annotations

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
    assert "ansible-galaxy collection install --no-deps" in containerfile
    build = context / "_build"
    assert (build / "collections" / "velocity-platform-0.1.0.tar.gz").exists()
    assert "hvac==" in (build / "requirements.txt").read_text()
    assert "kubernetes.core" in (build / "requirements.yml").read_text()
