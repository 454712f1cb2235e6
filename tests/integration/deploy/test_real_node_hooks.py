"""manifest_apply's hooks on the real node of the local cluster (hack/k8s/node.sh): containers really run.

- A Sync hook Job in wave 0 reads a ConfigMap of wave -1, in a namespace that has nothing yet (a first
  install), and runs to completion before wave 1 is applied: the ordering the deploy role's migration Job
  relies on. Its request reaches a server this test runs on the node IP, so the container really ran with
  the ConfigMap's value.
- A hook Job whose pod waits for a reason that never clears by itself (a missing ConfigMap, an image that
  cannot be pulled) fails the deploy at once, with the pod's reason and message, not at the hook timeout.

Images: `velocity.local/nettest:1` and `velocity.local/pause:1`, imported into the node's containerd at
every start (imagePullPolicy Never). Every address used is on this machine.
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import Deployer, DeployFailed, prepare

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

NETTEST = "velocity.local/nettest:1"
PAUSE = "velocity.local/pause:1"
ON_REAL_NODE = {
    "nodeSelector": {"velocity.dev/node": "real"},
    "tolerations": [{"key": "velocity.dev/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
}


@pytest.fixture
def node_ip(client):
    nodes = client.list("v1", "Node", label_selector="velocity.dev/node=real")
    ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in n["status"].get("conditions") or [])]
    if not ready:
        pytest.fail("the real node is not Ready (hack/k8s/node.sh start; hack/k8s/README.md)")
    return next(a["address"] for a in ready[0]["status"]["addresses"] if a["type"] == "InternalIP")


@pytest.fixture
def namespace(client):
    """An empty namespace: what the set's objects need does not exist until the set creates it."""
    name = "it-hooks-" + uuid.uuid4().hex[:8]
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    client.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@pytest.fixture
def receiver(node_ip):
    """An HTTP server on the node IP (pods reach the node's own addresses); records the paths asked for."""
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((node_ip, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{node_ip}:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


def config_map(data, wave="-1"):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "config", "annotations": {"argocd.argoproj.io/sync-wave": wave}}, "data": data}


def hook_job(phase, container, wave="0"):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "annotations": {
                "argocd.argoproj.io/hook": phase, "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
                "argocd.argoproj.io/sync-wave": wave}},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 120,
                     "template": {"spec": {**ON_REAL_NODE, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                           "containers": [{"imagePullPolicy": "Never", **container}]}}}}


def web_deployment():
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 60, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "web", "image": NETTEST, "imagePullPolicy": "Never",
                                      "args": ["serve", "-addr", ":8080"],
                                      "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080},
                                                         "periodSeconds": 1}}]}}}}


def run(client, namespace, objs, **kwargs):
    return Deployer(client, poll_interval=0.5, **kwargs).run(prepare(client, objs, namespace))


def test_sync_hook_runs_in_its_wave_after_the_config_it_reads_on_a_first_install(client, namespace, receiver):
    url, paths = receiver
    getter = {"name": "migrate", "image": NETTEST, "args": ["get", "$(TARGET)"],
              "envFrom": [{"configMapRef": {"name": "config"}}]}
    objs = [config_map({"TARGET": url + "/first"}), hook_job("Sync", getter), web_deployment()]
    result = run(client, namespace, objs, hook_timeout=120, wait_timeout=120)
    assert [(h["phase"], h["wave"], h["result"]) for h in result["hooks"]] == [("Sync", 0, "succeeded")]
    assert paths == ["/first"]  # the container ran, with the value of the ConfigMap of wave -1
    # The hook is not an applied object; the waves around it are, in order.
    assert [(o["kind"], o["wave"], o["action"]) for o in result["objects"]] == [
        ("ConfigMap", -1, "created"), ("Deployment", 1, "created")]
    job = client.get("batch/v1", "Job", "migrate", namespace)
    deployment = client.get("apps/v1", "Deployment", "web", namespace)
    completed = next(c for c in job["status"]["conditions"] if c["type"] == "Complete")
    # Wave 1 was applied only once the hook had completed.
    assert deployment["metadata"]["creationTimestamp"] >= completed["lastTransitionTime"]

    again = run(client, namespace, objs)
    assert not again["changed"] and again["hooks"] == [] and paths == ["/first"]

    # A new release: the Job (immutable template) is recreated (BeforeHookCreation), not applied.
    objs[0] = config_map({"TARGET": url + "/second"})
    third = run(client, namespace, objs, hook_timeout=120, wait_timeout=120)
    assert [(h["phase"], h["result"]) for h in third["hooks"]] == [("Sync", "succeeded")]
    assert paths == ["/first", "/second"]


def test_hook_waiting_for_a_missing_configmap_fails_at_once_with_the_pods_reason(client, namespace):
    waiter = {"name": "migrate", "image": PAUSE, "envFrom": [{"configMapRef": {"name": "absent"}}]}
    started = time.monotonic()
    with pytest.raises(DeployFailed) as failure:
        run(client, namespace, [config_map({"A": "1"}), hook_job("Sync", waiter), web_deployment()], hook_timeout=300)
    took = time.monotonic() - started
    message = failure.value.message
    assert took < 60, (took, message)  # the pod's reason ended the wait, not the 300 s hook timeout
    assert "Sync hook Job %s/migrate" % namespace in message
    assert "container migrate waiting: CreateContainerConfigError" in message
    assert 'configmap "absent" not found' in message
    assert "later waves were not applied" in message
    assert client.get_obj({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web", "namespace": namespace}}) is None


def test_hook_whose_image_cannot_be_pulled_fails_at_once_with_the_pods_reason(client, namespace):
    # The local registry, without credentials: the pull is refused (401), on this machine.
    puller = {"name": "migrate", "image": "127.0.0.1:5000/velocity/does-not-exist:1", "imagePullPolicy": "IfNotPresent"}
    started = time.monotonic()
    with pytest.raises(DeployFailed) as failure:
        run(client, namespace, [config_map({"A": "1"}), hook_job("PreSync", puller), web_deployment()],
            hook_timeout=300)
    took = time.monotonic() - started
    message = failure.value.message
    assert took < 60, (took, message)
    assert "PreSync hook Job %s/migrate" % namespace in message
    assert "container migrate waiting: ErrImagePull" in message or \
        "container migrate waiting: ImagePullBackOff" in message, message
    assert "127.0.0.1:5000/velocity/does-not-exist:1" in message  # the kubelet's message names the image
    assert "the workloads were not changed" in message
