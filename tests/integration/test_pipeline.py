"""The main job end to end: playbooks/site.yml on the embedded local default.

Runs the whole pipeline at -vvvv and then again: the second run must change
nothing. The real secrets of the run (the env file the secrets stage wrote) are the
canaries: none may appear in the Ansible output, the artifacts, the image's history
and labels, or the Kubernetes objects and events other than the Secret itself.

inventory/local runs the app on the local cluster's real node (kubelet + containerd):
the pods pull the pushed digest, migrate, connect to PostgreSQL on the node IP and
really serve. The last test sends requests through the Service's ClusterIP from this
machine (kube-proxy) and reads each pod's /metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.benchmarks.smoke import run_smoke

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
pytestmark = [pytest.mark.slow, pytest.mark.vault, pytest.mark.docker, pytest.mark.k8s, pytest.mark.postgres]
# Every address these tests send to is on this machine (a ClusterIP kube-proxy translates here, a pod IP on the
# node's bridge): never through an outbound proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
    # The Secret the pods mount (content-addressed: velocity-app-secrets-<hash>) holds them (base64), as it must;
    # it is a read-only volume, never variables (the container runtime's config would hold the values).
    pod_spec = apps.read_namespaced_deployment("velocity-app", "velocity").spec.template.spec
    assert not any(s.secret_ref for s in pod_spec.containers[0].env_from or [])
    secret_name = next(v.secret.secret_name for v in pod_spec.volumes if v.secret)
    assert secret_name.startswith("velocity-app-secrets-") and not any(s in secret_name for s in secrets)
    secret = core.read_namespaced_secret(secret_name, "velocity")
    assert set(secret.data) >= {"SECRET_KEY", "DATABASE_URL"}


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    try:
        with DIRECT.open(urllib.request.Request(url, method=method), timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _head_count(metrics: str) -> float:
    """Sum of http_requests_total over every label set with method="HEAD" (the kubelet's probes use GET)."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("http_requests_total{") and 'method="HEAD"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_service_answers_from_real_pods_and_metrics_count_every_worker(pipeline_runs, k8s_cluster):
    first, _ = pipeline_runs
    assert first.returncode == 0, first.stdout[-3000:]
    from kubernetes import client

    core = client.CoreV1Api(k8s_cluster.api_client())
    service = core.read_namespaced_service("velocity-app", "velocity")
    base = f"http://{service.spec.cluster_ip}:8000"
    # make run's summary prints this URL, and it answers from this machine.
    summary_url = re.search(r"^\s+service_url\s+(\S+)", first.stdout, re.M).group(1)
    assert summary_url == base + "/healthz"

    pods = [p for p in core.list_namespaced_pod("velocity", label_selector="app.kubernetes.io/name=velocity-app").items
            if p.metadata.deletion_timestamp is None and p.status.phase == "Running"]
    real_nodes = {n.metadata.name for n in core.list_node(label_selector="velocity.dev/node=real").items}
    assert len(pods) == 2 and {p.spec.node_name for p in pods} <= real_nodes and real_nodes, \
        [(p.metadata.name, p.spec.node_name) for p in pods]
    assert all(all(cs.ready for cs in p.status.container_statuses) for p in pods)

    deadline = time.monotonic() + 10  # kube-proxy programs a new endpoint about a second after it is ready
    while _get(base + "/healthz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _get(base + "/readyz")[0] == 200  # the real /readyz: the database is at the schema head

    def counts() -> dict[str, float]:
        return {p.status.pod_ip: _head_count(_get(f"http://{p.status.pod_ip}:8000/metrics")[1]) for p in pods}

    before = counts()
    sent = 60
    # A new connection each time: kube-proxy spreads them over the pods, Gunicorn over its workers.
    statuses = [_get(base + "/healthz", method="HEAD")[0] for _ in range(sent)]
    assert statuses == [200] * sent
    # Each pod's /metrics counts the requests of all its Gunicorn workers (PROMETHEUS_MULTIPROC_DIR): scraped
    # several times (a different worker may answer each scrape) it never changes, and the pods add up to every
    # request sent. Without the multiprocess directory each scrape sees one worker's counter.
    scrapes = [counts() for _ in range(6)]
    assert all(scrape == scrapes[0] for scrape in scrapes), scrapes
    assert sum(scrapes[0].values()) - sum(before.values()) == sent, (before, scrapes[0])


def test_the_release_carries_its_images_schema_head_and_window(pipeline_runs, k8s_cluster):
    """The pod template says which schema its code needs and which heads survive its migrations, as the image
    itself says (velocity-app schema-info): what manifest_apply's rollback check reads."""
    first, _ = pipeline_runs
    assert first.returncode == 0, first.stdout[-3000:]
    from kubernetes import client

    apps = client.AppsV1Api(k8s_cluster.api_client())
    annotations = apps.read_namespaced_deployment("velocity-app", "velocity").spec.template.metadata.annotations
    image_id = annotations["velocity.dev/image-id"]
    asked = subprocess.run(["docker", "run", "--rm", "--pull", "never", "--network", "none", image_id,
                            "velocity-app", "schema-info"], capture_output=True, text=True, timeout=120)
    assert asked.returncode == 0, asked.stderr
    info = json.loads(asked.stdout)
    assert info["schema_head"] and info["schema_head"] in info["schema_window"]
    assert annotations["velocity.dev/schema-head"] == info["schema_head"]
    assert annotations["velocity.dev/schema-window"] == ",".join(info["schema_window"])
