"""The main job end to end: playbooks/site.yml on the embedded local default.

Runs the whole pipeline at -vvvv and then again: the second run must change
nothing. The real secrets of the run (the env file the secrets stage wrote) are the
canaries: none may appear in the Ansible output, the artifacts, the image's history
and labels, or the Kubernetes objects and events other than the Secret itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.benchmarks.smoke import run_smoke

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
pytestmark = [pytest.mark.slow, pytest.mark.vault, pytest.mark.docker, pytest.mark.k8s, pytest.mark.postgres]


def _run_site(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run([str(BIN / "ansible-playbook"), "playbooks/site.yml", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


def _secret_values(env_file: Path) -> list[str]:
    values = []
    for line in env_file.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            value = line.split("=", 1)[1].strip().strip("'\"")
            values.append(value)
            password = urlsplit(value).password if "://" in value else None
            if password:
                values.append(password)
    return [v for v in values if len(v) >= 8]


@pytest.fixture(scope="module")
def pipeline_runs(postgres, docker_engine, k8s_cluster, tmp_path_factory):
    # setup's job on a fresh machine: OpenBao started and configured like a real environment.
    subprocess.run(["bash", str(ROOT / "scripts" / "vault-bootstrap.sh"), "dev", "--kubeconfig", str(k8s_cluster.kubeconfig)],
                   check=True, stdout=subprocess.DEVNULL)
    first = _run_site("-vvvv")
    # The second run is the main job's own entry (scripts/run-pipeline) timed by the pipeline benchmark's
    # smoke mode, so one run checks idempotence and keeps benchmarks/pipeline.py working.
    return first, run_smoke("pipeline", tmp_path_factory.mktemp("bench"), timeout=1800)


def test_pipeline_runs_green_with_a_stage_line_each_and_a_summary(pipeline_runs):
    first, _ = pipeline_runs
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
    for stage in ("Secrets from Vault", "Build, SBOM and smoke-test the app image", "Deploy the app to Kubernetes",
                  "Verify the release"):
        assert re.search(rf"\[velocity\] stage {re.escape(stage)}\s+done in [\d.]+s", first.stdout), stage
    assert "[velocity] pipeline succeeded" in first.stdout
    for key in ("image_digest", "sbom", "revision", "service_url"):
        assert re.search(rf"^\s+{key}\s+\S", first.stdout, re.M), key


def test_second_run_changes_nothing(pipeline_runs):
    _, bench = pipeline_runs
    warm = bench["variants"]["warm"]
    assert warm["changed_tasks"] == [0], f"changed on the second run: {warm['changed_names']}"
    assert warm["seconds"]["median"] > 0
    assert set(warm["stages"]) >= {"Secrets from Vault", "Build, SBOM and smoke-test the app image",
                                   "Deploy the app to Kubernetes", "Verify the release"}, warm["stages"]


def test_no_secret_of_the_run_leaks_anywhere(pipeline_runs, k8s_cluster):
    first, _ = pipeline_runs
    env_file = STATE / "secrets" / "app.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    secrets = _secret_values(env_file)
    assert len(secrets) >= 3  # SECRET_KEY, DATABASE_URL and its password
    # The registry password (from Vault via the secrets stage) is pushed with and becomes the pull Secret.
    pull_secret = STATE / "secrets" / "registry-pull-secret.json"
    assert oct(pull_secret.stat().st_mode & 0o777) == "0o600"
    secrets.append((STATE / "registry" / "password").read_text().strip())

    places = {"ansible -vvvv output": first.stdout + first.stderr}
    for path in (STATE / "artifacts").rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_text(errors="replace")
    image = "velocity/app:0.1.0"
    places["docker history"] = subprocess.run(["docker", "history", "--no-trunc", image], capture_output=True, text=True).stdout
    places["docker inspect"] = subprocess.run(["docker", "inspect", image], capture_output=True, text=True).stdout
    from kubernetes import client

    api = k8s_cluster.api_client()
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    listings = [apps.list_namespaced_deployment, apps.list_namespaced_replica_set, core.list_namespaced_pod,
                core.list_namespaced_service, core.list_namespaced_config_map, batch.list_namespaced_job,
                core.list_namespaced_service_account, core.list_namespaced_event]
    for listing in listings:
        places[listing.__name__] = json.dumps(api.sanitize_for_serialization(listing("velocity")))
    leaks = [(where, s[:4] + "...") for where, text in places.items() for s in secrets if s in text]
    assert leaks == []
    # The Secret itself holds them (base64), as it must.
    secret = core.read_namespaced_secret("velocity-app-secrets", "velocity")
    assert set(secret.data) >= {"SECRET_KEY", "DATABASE_URL"}
