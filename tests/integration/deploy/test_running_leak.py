"""Leak test over RUNNING containers, on the real node (hack/k8s/node.sh): the app's real image really runs.

A release with canary values (SECRET_KEY = "canary-leak-..." and a DATABASE_URL with a fresh database user that
the real Vault issued, so /readyz passes) is deployed into a namespace of its own through playbooks/deploy.yml
at -vvv. Then, for those values and their base64 forms:

- `/proc/<pid>/environ` of the container's main process (the pid `crictl inspect` reports) HOLDS them: the
  canaries were really planted in the running process (the one place they are allowed);
- the ansible output (-vvv, stdout and stderr), the container logs (read through the API server, as
  `kubectl logs` does), the Pod, ReplicaSet and Deployment objects (annotations included) and the namespace's
  Events hold none of them;
- `crictl inspect` of the running container (the node's crictl, `hack/k8s/node.sh crictl`) holds none of
  them: the deploy template mounts the Secret as a read-only volume and `velocity-app serve` reads its files
  into the environment before it execs Gunicorn, so the kubelet never resolves the values into the CRI
  container config (`info.config.envs`) or the OCI runtime spec (`info.runtimeSpec.process.env`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.fixtures.k8s import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
NODE_SH = ROOT / "hack" / "k8s" / "node.sh"
STATE = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity"))
APP = "velocity-app"


def forms(value: str) -> list[str]:
    """The value and the encodings a careless path could produce (base64 as in a Secret's data)."""
    b64 = base64.b64encode(value.encode()).decode()
    return [value, b64, b64.rstrip("=")]


def leaks(places: dict[str, str], canaries: dict[str, str]) -> list[tuple[str, str]]:
    """(place, which canary) for every canary form found; the values themselves are never printed."""
    return [(where, name) for where, text in places.items() for name, value in canaries.items()
            if any(form in text for form in forms(value))]


def crictl(*args: str) -> str:
    out = subprocess.run(["bash", str(NODE_SH), "crictl", *args], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"node.sh crictl {' '.join(args)} exited {out.returncode}: {out.stderr[-2000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def running(k8s_cluster, k8s_api_client, vault, postgres, tmp_path_factory, pipeline_release):
    """The canary release, Ready on the real node; its ansible output, pods and canaries. Cleaned up after."""
    from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient

    client = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    live = pipeline_release
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "@sha256:" in image, image
    manifest = json.loads((STATE / "secrets" / "app-secret.json").read_text())
    # Only the address part of the secrets stage's URL; the user comes from Vault here.
    address = re.sub(r"://[^@]*@", "://", base64.b64decode(manifest["data"]["DATABASE_URL"]).decode())
    with vault.client() as c:
        issued = c.hvac.secrets.database.generate_credentials(name="velocity-app", mount_point="database")
    user, password = issued["data"]["username"], issued["data"]["password"]
    canaries = {"SECRET_KEY": "canary-leak-" + secrets.token_urlsafe(32),
                "DATABASE_URL": address.replace("://", f"://{user}:{password}@", 1),
                "database password": password}
    namespace = "leakrun-" + uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("leakrun")
    pull = json.loads((STATE / "secrets" / "registry-pull-secret.json").read_text())
    pull["metadata"]["namespace"] = namespace
    pull_file = tmp / "pull-secret.json"
    pull_file.touch(mode=0o600)
    pull_file.write_text(json.dumps(pull))
    extra = {
        "deploy_namespace": namespace, "deploy_image": image, "deploy_image_digest": image.split("@")[1],
        "deploy_secret_file": "", "deploy_secret_lease": {
            "lease_id": issued["lease_id"], "expires_at": int(time.time()) + int(issued["lease_duration"])},
        "deploy_secret_data": {"SECRET_KEY": canaries["SECRET_KEY"], "DATABASE_URL": canaries["DATABASE_URL"]},
        "deploy_image_pull_secret_file": str(pull_file), "deploy_image_pull_secret_name": pull["metadata"]["name"],
        "deploy_progress_deadline_seconds": 90, "deploy_wait_timeout": 240, "deploy_replicas": 1,
        "deploy_migration_enabled": False, "deploy_smoke_enabled": False,
        "deploy_config": {"LOG_LEVEL": "debug", "GUNICORN_TIMEOUT": "30"},
        "deploy_dora_events_file": str(tmp / "events.jsonl"),
    }
    vars_file = tmp / "vars.json"
    vars_file.touch(mode=0o600)
    vars_file.write_text(json.dumps(extra))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    try:
        run = subprocess.run([str(BIN / "ansible-playbook"), "playbooks/deploy.yml", "-e", f"@{vars_file}", "-vvv"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
        assert run.returncode == 0, run.stdout[-4000:]

        def ready_pods():
            pods = [p for p in client.list("v1", "Pod", namespace=namespace,
                                           label_selector=f"app.kubernetes.io/name={APP}")
                    if not p["metadata"].get("deletionTimestamp")]
            return pods if pods and all(any(c.get("type") == "Ready" and c.get("status") == "True"
                                            for c in p["status"].get("conditions") or []) for p in pods) else None

        pods = wait_until("the canary release's pods to be Ready", ready_pods, timeout=120)
        # Some traffic, so the logs have request lines (and any careless log of the config would be there).
        for pod in pods:
            subprocess.run(["kubectl", "--kubeconfig", k8s_cluster.kubeconfig, "-n", namespace, "exec",
                            pod["metadata"]["name"], "--", "velocity-app", "healthcheck", "--url",
                            "http://127.0.0.1:8000/readyz"], capture_output=True, text=True, timeout=60)
        yield {"client": client, "api": k8s_api_client, "namespace": namespace, "pods": pods, "run": run,
               "canaries": canaries}
    finally:
        client.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        client.close()
        with vault.client() as c:
            c.hvac.sys.revoke_lease(lease_id=issued["lease_id"])


def containers(state) -> list[tuple[str, str]]:
    """(pod name, container id) of the running app containers."""
    out = []
    for pod in state["pods"]:
        for cs in pod["status"]["containerStatuses"]:
            assert cs["containerID"].startswith("containerd://"), cs["containerID"]
            out.append((pod["metadata"]["name"], cs["containerID"].split("://", 1)[1]))
    return out


def test_the_running_process_environment_holds_the_canaries(running):
    """The one allowed place: proves the canaries were really planted in the running containers."""
    for pod, cid in containers(running):
        pid = json.loads(crictl("inspect", cid))["info"]["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace").split("\0")
        assert f"SECRET_KEY={running['canaries']['SECRET_KEY']}" in environ, pod
        assert f"DATABASE_URL={running['canaries']['DATABASE_URL']}" in environ, pod


def test_no_canary_in_ansible_output_logs_objects_or_events(running):
    from kubernetes import client as k8s

    core = k8s.CoreV1Api(running["api"])
    client, namespace = running["client"], running["namespace"]
    places = {"ansible -vvv stdout": running["run"].stdout, "ansible -vvv stderr": running["run"].stderr}
    for pod in running["pods"]:
        name = pod["metadata"]["name"]
        logs = core.read_namespaced_pod_log(name, namespace, container="web" if len(
            pod["spec"]["containers"]) > 1 else None)
        assert logs.strip(), f"no log lines from {name}: the check below would prove nothing"
        places[f"logs of {name}"] = logs
    for api_version, kind in (("v1", "Pod"), ("apps/v1", "ReplicaSet"), ("apps/v1", "Deployment"), ("v1", "Event")):
        objs = client.list(api_version, kind, namespace=namespace)
        assert objs, f"no {kind} in {namespace}"
        places[f"{kind} objects (annotations included)"] = json.dumps(objs)
    # The annotations, on their own, so a hit says where.
    for api_version, kind in (("v1", "Pod"), ("apps/v1", "ReplicaSet"), ("apps/v1", "Deployment")):
        for obj in client.list(api_version, kind, namespace=namespace):
            places[f"annotations of {kind} {obj['metadata']['name']}"] = json.dumps(
                [obj["metadata"].get("annotations"),
                 ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations")])
    assert leaks(places, running["canaries"]) == []


def test_no_canary_in_crictl_inspect_of_the_running_containers(running):
    places = {f"crictl inspect {cid[:12]} ({pod})": crictl("inspect", cid) for pod, cid in containers(running)}
    assert leaks(places, running["canaries"]) == []
