"""Check mode tells the truth about the whole pipeline.

After a clean run, `site.yml --check --diff` reports changed=0 on every stage and shows no
diff, as AWX's "Check" job type with "Show Changes" runs it (ansible-runner: ansible-playbook
``--check --diff`` underneath). After a real change (here: the app's configuration), check mode
run from a shell predicts exactly the objects and files the real run then changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.slow, pytest.mark.vault, pytest.mark.docker, pytest.mark.k8s, pytest.mark.postgres]

def config_change() -> dict:
    """A configuration change: a new ConfigMap and, through its checksum, the Deployment's pod template.

    New on every run: the ConfigMaps are content-addressed and kept while a ReplicaSet in the history names
    them, so the same change made by an earlier run on this cluster would find its ConfigMap already there."""
    return {"deploy_config": {"LOG_LEVEL": "warning", "GUNICORN_TIMEOUT": "30", "CHECK_MODE_RUN": uuid.uuid4().hex}}



def site(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run([str(BIN / "ansible-playbook"), "playbooks/site.yml", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


def changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"^localhost\s+:.*\bchanged=(\d+)", out, re.M))


def diffed(out: str) -> set[str]:
    """What a --diff run showed as changing: Kubernetes objects and files, by name."""
    return set(re.findall(r"^--- before: (.+)$", out, re.M))


@pytest.fixture(scope="module")
def clean_run(vault, postgres, docker_engine, k8s_cluster):
    run = site()
    assert run.returncode == 0, run.stdout[-4000:]
    return run


def test_check_after_a_clean_run_changes_nothing_and_shows_no_diff(clean_run, tmp_path):
    """As AWX runs a "Check" job with "Show Changes" (ansible-runner, ``--check --diff``): ansible-playbook
    underneath, as from a shell (the other tests here run it from a shell), with AWX's event callback on top."""
    import ansible_runner

    # The project is this git checkout, as AWX's project sync leaves one (the revision is part of the release).
    pdd = tmp_path / "job"
    shutil.copytree(ROOT / "inventory" / "local", pdd / "inventory")
    result = ansible_runner.run(private_data_dir=str(pdd), project_dir=str(ROOT), playbook="playbooks/site.yml",
                                cmdline="--check --diff", quiet=True,
                                envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
    # Each event's display text, one per line, without the colours ansible-runner keeps.
    stdout = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(e.get("stdout", "") for e in result.events))
    assert result.status == "successful" and result.rc == 0, stdout[-4000:]
    assert sum(result.stats.get("changed", {}).values()) == 0, stdout[-6000:]
    assert diffed(stdout) == set(), stdout[-6000:]
    assert "--- before" not in stdout and "+++ after" not in stdout, stdout[-6000:]


def test_check_predicts_exactly_what_the_real_run_changes(clean_run):
    change = ["-e", json.dumps(config_change())]
    predicted = site("--check", "--diff", *change)
    try:
        assert predicted.returncode == 0, predicted.stdout[-4000:]
        real = site("--diff", *change)
        assert real.returncode == 0, real.stdout[-4000:]
        objects = {name for name in diffed(real.stdout) if not name.startswith("/")}
        # The ConfigMap is content-addressed (velocity-app-<hash>): the change creates a new one.
        assert "Deployment velocity/velocity-app" in objects
        assert any(re.fullmatch(r"ConfigMap velocity/velocity-app-[0-9a-f]{10}", name) for name in objects), objects
        assert diffed(predicted.stdout) == diffed(real.stdout)
        assert changed(predicted.stdout) == changed(real.stdout) > 0
    finally:
        restored = site()
        assert restored.returncode == 0, restored.stdout[-4000:]
