"""Schema changes do not take the previous release down: two real migrations on the real node.

Release N is the app image with this tree's `velocity_app` (schema head 0001_visits). Release N+1 is
built FROM release N plus one Alembic migration that adds a column. Both run on the real node
(hack/k8s/node.sh; images imported into its containerd), against a PostgreSQL database and role of
this test's own (not the shared `velocity` database), through manifest_apply's Deployer: the
migration is a Sync hook Job in wave 0 (`velocity-app migrate`), the Deployment is in wave 1 and its
pod template carries the image's `velocity-app schema-info` as velocity.dev/schema-head/-window.

N+1's pods never start (an invalid LOG_LEVEL on the Deployment only), so its rollout fails after its
migration ran and manifest_apply rolls back:

- declared compatible_with_previous = True: the rollback happens, and N answers /readyz 200 through
  the Service for the whole test (polled from the host via the ClusterIP), with the database left at
  N+1's head;
- declared False: the rollback is refused with the message naming the migration, the state and the
  downgrade; then the runbook's procedure (downgrade with N+1's image, then roll the pods back) is
  carried out and timed, and N is Ready again.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import Deployer, DeployFailed, prepare
from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import revision_of, undo
from tests.fixtures.k8s import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[3]
NODE_SH = ROOT / "hack" / "k8s" / "node.sh"
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
SITE = "/opt/venv/lib/python3.11/site-packages/velocity_app"
BASE_IMAGE = os.environ.get("SCHEMAWIN_BASE_IMAGE", "velocity/app:0.1.0")
HEAD_N = "0001_visits"
HEAD_N1 = "0002_visits_user_agent"
ON_REAL_NODE = {
    "nodeSelector": {"velocity.dev/node": "real"},
    "tolerations": [{"key": "velocity.dev/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
}
MIGRATION = '''"""Add visits.user_agent (an expand step)."""

import sqlalchemy as sa
from alembic import op

revision = "{head}"
down_revision = "{down}"
branch_labels = None
depends_on = None
compatible_with_previous = {compatible}


def upgrade() -> None:
    op.add_column("visits", sa.Column("user_agent", sa.String(512), nullable=True))


def downgrade() -> None:
    op.drop_column("visits", "user_agent")
'''


def sh(*args: str, timeout: float = 600, **kwargs) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                         **kwargs)
    assert out.returncode == 0, f"{' '.join(args[:4])} exited {out.returncode}: {out.stderr[-3000:]}"
    return out.stdout


def build(tag: str, dockerfile: str, context: Path) -> None:
    (context / "Dockerfile").write_text(dockerfile)
    sh("docker", "build", "-q", "-t", tag, str(context), timeout=900)
    sh("bash", str(NODE_SH), "import-image", tag, timeout=900)


def schema_info(tag: str) -> dict:
    return json.loads(sh("docker", "run", "--rm", "--entrypoint", "velocity-app", tag, "schema-info"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """N (this tree's app code on the app image), N+1 compatible and N+1 incompatible; removed after."""
    suffix = uuid.uuid4().hex[:8]
    tags = {"n": f"velocity.local/schemawin:n-{suffix}", "compatible": f"velocity.local/schemawin:c-{suffix}",
            "incompatible": f"velocity.local/schemawin:i-{suffix}"}
    ctx = tmp_path_factory.mktemp("release-n")
    sh("cp", "-r", str(ROOT / "app" / "src" / "velocity_app"), str(ctx / "velocity_app"))
    sh("find", str(ctx), "-name", "__pycache__", "-prune", "-exec", "rm", "-rf", "{}", "+")
    try:
        build(tags["n"], f"FROM {BASE_IMAGE}\nCOPY velocity_app/ {SITE}/\n", ctx)
        for kind, compatible in (("compatible", True), ("incompatible", False)):
            ctx = tmp_path_factory.mktemp(f"release-n1-{kind}")
            (ctx / f"{HEAD_N1}.py").write_text(MIGRATION.format(head=HEAD_N1, down=HEAD_N, compatible=compatible))
            build(tags[kind], f"FROM {tags['n']}\nCOPY {HEAD_N1}.py {SITE}/migrations/versions/\n", ctx)
        info = {k: schema_info(t) for k, t in tags.items()}
        assert info["n"] == {"schema_head": HEAD_N, "schema_window": [HEAD_N]}
        assert info["compatible"] == {"schema_head": HEAD_N1, "schema_window": [HEAD_N1, HEAD_N]}
        assert info["incompatible"] == {"schema_head": HEAD_N1, "schema_window": [HEAD_N1]}
        yield {k: {"image": t, **info[k]} for k, t in tags.items()}
    finally:
        for tag in tags.values():
            subprocess.run(["bash", str(NODE_SH), "ctr", "-n", "k8s.io", "images", "rm", tag],
                           capture_output=True, timeout=120)
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)


@pytest.fixture
def database(postgres):
    """A database and login role of this test's own, reachable from the pods (the address the pipeline uses)."""
    name = "schemawin_" + uuid.uuid4().hex[:10]
    password = secrets.token_urlsafe(24)
    postgres.psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'", database="postgres")
    postgres.psql(f"CREATE DATABASE {name} OWNER {name}", database="postgres")
    manifest = json.loads((STATE / "secrets" / "app-secret.json").read_text())
    pipeline_url = base64.b64decode(manifest["data"]["DATABASE_URL"]).decode()
    address = pipeline_url.split("@", 1)[1].rsplit("/", 1)[0].split("?")[0]  # host:port pods reach
    yield {"name": name, "url": f"postgresql://{name}:{password}@{address}/{name}"}
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", database="postgres")
    postgres.psql(f"DROP ROLE IF EXISTS {name}", database="postgres")


@pytest.fixture
def namespace(client):
    name = "schemawin-" + uuid.uuid4().hex[:8]
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    client.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


# A CPU request makes the pods Burstable, as the deploy role's are. BestEffort pods share the kubelet's
# besteffort cgroup, whose CPU weight is 2 against the burstable cgroup's sum of requests (cgroup v1 shares):
# while other tests' pods are busy they get next to no CPU, and N's pods once took over 3 s to answer
# /readyz in .ci/run (the kubelet marked one not ready too), which this test would count as N not serving.
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}}


def release(rel: dict, database_url: str, broken: bool = False) -> list[dict]:
    """Secret (wave -1), Service, the migration Sync hook (wave 0) and the Deployment (wave 1) of one release."""
    container = {"name": "app", "image": rel["image"], "imagePullPolicy": "Never", "resources": RESOURCES,
                 "envFrom": [{"secretRef": {"name": "app"}}], "env": [{"name": "GUNICORN_WORKERS", "value": "1"}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}, "periodSeconds": 1,
                                    "failureThreshold": 2}}
    if broken:  # the release's pods never start: its rollout fails after its migration ran
        container["env"].append({"name": "LOG_LEVEL", "value": "NOT-A-LEVEL"})
    annotations = {"velocity.dev/schema-head": rel["schema_head"],
                   "velocity.dev/schema-window": ",".join(rel["schema_window"])}
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app", "annotations": {
            "argocd.argoproj.io/sync-wave": "-1"}},
         "stringData": {"DATABASE_URL": database_url, "SECRET_KEY": "schemawin-" + "k" * 32}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app"},
         "spec": {"selector": {"app": "app"}, "ports": [{"port": 8000, "targetPort": 8000}]}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "migrate", "annotations": {
             "argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
             "argocd.argoproj.io/sync-wave": "0"}},
         "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 340, "template": {"spec": {
             **ON_REAL_NODE, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
             "containers": [{"name": "migrate", "image": rel["image"], "imagePullPolicy": "Never",
                             "args": ["velocity-app", "migrate"], "resources": RESOURCES,
                             "envFrom": [{"secretRef": {"name": "app"}}]}]}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "app", "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
         "spec": {"replicas": 2, "progressDeadlineSeconds": 300, "revisionHistoryLimit": 5,
                  "selector": {"matchLabels": {"app": "app"}},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": {"metadata": {"labels": {"app": "app"}, "annotations": annotations},
                               "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 5,
                                        "containers": [container]}}}},
    ]


def deploy(client, namespace, objs):
    return Deployer(client, poll_interval=0.5, hook_timeout=360, wait_timeout=480).run(
        prepare(client, objs, namespace))


class Poller:
    """GET /readyz through the Service's ClusterIP from the host, every 0.2 s, in a thread."""

    def __init__(self, url: str):
        self.url, self.ok, self.failures, self.schemas = url, 0, [], set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=3) as resp:
                    body = json.loads(resp.read())
                    self.ok += 1
                    self.schemas.add(body["checks"]["schema"])
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


def ready_n(client, namespace):
    def probe():
        service = client.get("v1", "Service", "app", namespace)
        url = f"http://{service['spec']['clusterIP']}:8000/readyz"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return url if resp.status == 200 else None
        except (urllib.error.URLError, OSError):
            return None
    return wait_until("release N to answer /readyz through its Service", probe, timeout=300)


def db_head(postgres, database) -> str:
    return postgres.psql("SELECT version_num FROM alembic_version", database=database["name"])


def test_compatible_migration_rolls_back_and_n_serves_throughout(client, namespace, images, database, postgres):
    first = deploy(client, namespace, release(images["n"], database["url"]))
    assert [h["result"] for h in first["hooks"]] == ["succeeded"]
    assert db_head(postgres, database) == HEAD_N
    url = ready_n(client, namespace)
    with Poller(url) as poll:
        time.sleep(2)
        with pytest.raises(DeployFailed) as failure:
            deploy(client, namespace, release(images["compatible"], database["url"], broken=True))
        time.sleep(3)
    result = failure.value.result
    assert [h["result"] for h in result["hooks"]] == ["succeeded"]  # N+1's migration ran
    [rollback] = result["rollback"]
    assert "error" not in rollback, rollback
    assert rollback["state"] == "Available"
    assert "rolled %s/Deployment/app back" % namespace in failure.value.message or "rolled" in failure.value.message
    live = client.get("apps/v1", "Deployment", "app", namespace)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == images["n"]["image"]
    assert db_head(postgres, database) == HEAD_N1  # the database stays ahead
    assert poll.failures == [], poll.failures[:10]
    assert poll.ok > 20, poll.ok
    # N said it ran ahead, within the window, once N+1's migration had run.
    assert f"at {HEAD_N1}, ahead of this release's {HEAD_N}, within the compatibility window" in poll.schemas
    print(f"N answered {poll.ok} /readyz polls through the Service, none failed; rollback took "
          f"{rollback['duration_s']} s")


def test_incompatible_migration_refuses_the_rollback_then_downgrade_first(client, namespace, images, database,
                                                                             postgres):
    deploy(client, namespace, release(images["n"], database["url"]))
    ready_n(client, namespace)
    with pytest.raises(DeployFailed) as failure:
        deploy(client, namespace, release(images["incompatible"], database["url"], broken=True))
    message = failure.value.message
    assert "refused to roll back to revision 1" in message, message
    assert f"migration {HEAD_N1} of the failed revision 2" in message
    assert f"its hook {namespace}/Job/migrate ran" in message or "ran in this sync" in message, message
    assert f"the Deployment stays at revision 2, the database is at {HEAD_N1}" in message
    assert f"`velocity-app migrate --downgrade {HEAD_N}`" in message
    live = client.get("apps/v1", "Deployment", "app", namespace)
    assert revision_of(live) == 2
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == images["incompatible"]["image"]
    assert db_head(postgres, database) == HEAD_N1

    # N's pods say why they cannot serve.
    def n_unready():
        pods = [p for p in client.list("v1", "Pod", namespace=namespace, label_selector="app=app")
                if p["spec"]["containers"][0]["image"] == images["n"]["image"]]
        return pods if pods and all(any(c["type"] == "Ready" and c["status"] == "False"
                                        for c in p["status"].get("conditions") or []) for p in pods) else None
    wait_until("N's pods to turn unready past the incompatible migration", n_unready, timeout=180)

    # The runbook: downgrade first, with N+1's image (it has the migration's downgrade), then the pods.
    started = time.monotonic()
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "downgrade", "namespace": namespace},
           "spec": {"backoffLimit": 0, "template": {"spec": {
               **ON_REAL_NODE, "restartPolicy": "Never",
               "containers": [{"name": "downgrade", "image": images["incompatible"]["image"],
                               "imagePullPolicy": "Never", "args": ["velocity-app", "migrate", "--downgrade", HEAD_N],
                               "resources": RESOURCES, "envFrom": [{"secretRef": {"name": "app"}}]}]}}}}
    client.create(job)

    def done():
        j = client.get("batch/v1", "Job", "downgrade", namespace)
        conds = {c["type"]: c["status"] for c in (j.get("status") or {}).get("conditions") or []}
        assert conds.get("Failed") != "True", j["status"]
        return j if conds.get("Complete") == "True" else None
    wait_until("the downgrade Job to complete", done, timeout=360)
    job_s = time.monotonic() - started
    pod = client.list("v1", "Pod", namespace=namespace, label_selector="job-name=downgrade")[0]
    logs = sh("kubectl", "--kubeconfig", str(STATE / "k8s" / "kubeconfig"), "-n", namespace, "logs",
              pod["metadata"]["name"])
    summary = json.loads([line for line in logs.splitlines() if line.startswith('{"migrated"')][-1])
    assert summary["migrated"] == {"from": HEAD_N1, "to": HEAD_N}
    assert summary["schema_window"] == [HEAD_N]
    assert db_head(postgres, database) == HEAD_N

    started = time.monotonic()
    undo(client, client.get("apps/v1", "Deployment", "app", namespace), to_revision=1, force=True)
    url = ready_n(client, namespace)
    rollback_s = time.monotonic() - started
    with urllib.request.urlopen(url, timeout=3) as resp:
        assert json.loads(resp.read())["checks"]["schema"] == HEAD_N
    print(f"downgrade: migrate {summary['duration_s']} s, Job end to end {job_s:.1f} s; "
          f"pods rolled back and serving {rollback_s:.1f} s later")
