"""Failed releases for real, on the real node of the local cluster (hack/k8s/node.sh), through manifest_apply.

Release N is a real serving image pulled from the project's registry (scripts/services/registry.sh) by digest
with a pull Secret: the node build's `nettest` image pushed as `velocity/realfail-nettest`. Each failing
release N+1 changes only the Deployment's pod template:

(a) the container crashes on start (an unknown command: exit code 2): CrashLoopBackOff, fatal once the container
    has restarted CRASH_LOOP_RESTARTS (2) times, with the exit code and the kubelet's back-off event;
(b) a readiness probe that never passes (the server answers /readyz 503 for a day): not fail-fast (it might pass later), it ends at the Deployment's
    progressDeadlineSeconds (ProgressDeadlineExceeded) with the kubelet's "Readiness probe failed" event;
(c) an image digest the registry does not hold: ErrImagePull/ImagePullBackOff with the registry's "not found";
(d) a pull Secret with a wrong password: ErrImagePull/ImagePullBackOff with the registry's 401 Unauthorized.

Each ends well before the wait timeout (the message names the pod's reason, not the timeout), is rolled back
automatically to release N's template, and release N still answers 200 through the ClusterIP from this host
(the node), from a pod of release N's ReplicaSet. The messages are asserted by their reason words, not by
timings; the measured times are printed (`pytest -s`) for the benchmarks' notes.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import Deployer, DeployFailed, prepare
from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import HASH_LABEL, revision_of
from tests.fixtures.k8s import wait_until
from tests.integration.k8s.test_real_node import NODE_SH, ON_REAL_NODE, push_oci_archive, run

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

REPOSITORY = "velocity/realfail-nettest"
WAIT_TIMEOUT = 300  # far above every case: reaching it would fail the "reason words" assertions
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def kube(k8s_cluster):
    from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient

    c = K8sClient.from_params({"kubeconfig": k8s_cluster.kubeconfig})
    nodes = c.list("v1", "Node", label_selector="velocity.dev/node=real")
    if not any(cond.get("type") == "Ready" and cond.get("status") == "True"
               for n in nodes for cond in n["status"].get("conditions") or []):
        pytest.fail("the real node is not Ready (hack/k8s/node.sh start; hack/k8s/README.md)")
    yield c
    c.close()


@pytest.fixture(scope="module")
def image(registry):
    """Release N's image, by the digest the registry reports."""
    bindir = Path(run("bash", str(NODE_SH), "bindir").stdout.strip())
    digest = push_oci_archive(registry, bindir / "nettest.oci.tar", REPOSITORY, "release-n")
    return f"{registry.host}/{REPOSITORY}@{digest}"


def pull_secret(name: str, registry, password: str) -> dict:
    auth = base64.b64encode(f"{registry.username}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry.host: {"auth": auth}}})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}


def deployment(image: str, args=("serve", "-addr", ":8080"), secret="registry-good",
               pull_policy="IfNotPresent", deadline=120) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "progressDeadlineSeconds": deadline, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": {"app": "web"}},
                     # Never below the desired ready replicas: release N serves while N+1 fails.
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1,
                                           "imagePullSecrets": [{"name": secret}],
                                           "containers": [{
                                               "name": "web", "image": image, "imagePullPolicy": pull_policy,
                                               "args": list(args), "ports": [{"containerPort": 8080}],
                                               "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080},
                                                                  "periodSeconds": 1, "failureThreshold": 1}}]}}}}


@pytest.fixture(scope="module")
def release_n(kube, registry, image):
    """A namespace with release N serving; deleted at the end."""
    namespace = "it-realfail-" + uuid.uuid4().hex[:8]
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        objs = [pull_secret("registry-good", registry, registry.password),
                pull_secret("registry-bad", registry, "not-the-password"), SERVICE, deployment(image)]
        result = deploy(kube, namespace, objs)
        assert result["changed"]
        live = kube.get("apps/v1", "Deployment", "web", namespace)
        yield {"namespace": namespace, "objs": objs, "image": image, "template": live["spec"]["template"]}
    finally:
        kube.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})


def deploy(kube, namespace: str, objs: list) -> dict:
    return Deployer(kube, poll_interval=0.5, wait_timeout=WAIT_TIMEOUT).run(prepare(kube, objs, namespace))


def serving_hash(kube, namespace: str) -> str:
    """The pod-template-hash of the pod answering 200 through the Service's ClusterIP (from this host, the node)."""
    ip = kube.get("v1", "Service", "web", namespace)["spec"]["clusterIP"]

    def answer():
        try:
            with urllib.request.urlopen(f"http://{ip}/", timeout=2) as resp:
                return resp.status == 200 and resp.read().decode().split("hello from ", 1)[1].strip()
        except (OSError, IndexError):
            return None  # kube-proxy lags a changed endpoint by about a second

    pod_name = wait_until("release N to answer through the ClusterIP", answer, timeout=60)
    pod = kube.get("v1", "Pod", pod_name, namespace)
    return pod["metadata"]["labels"][HASH_LABEL]


def fail_release(kube, release, broken: dict, case: str) -> str:
    namespace = release["namespace"]
    before = kube.get("apps/v1", "Deployment", "web", namespace)
    serving_before = serving_hash(kube, namespace)
    objs = [o for o in release["objs"] if o["kind"] != "Deployment"] + [broken]
    started = time.monotonic()
    with pytest.raises(DeployFailed) as failure:
        deploy(kube, namespace, objs)
    TIMES[case] = round(time.monotonic() - started, 1)
    print(f"\n[{case}] failed and rolled back in {TIMES[case]} s")
    message = failure.value.message
    result = failure.value.result
    assert f"not ready after {WAIT_TIMEOUT}s" not in message, message  # the reason ended the wait
    [rollback] = result["rollback"]
    assert not rollback.get("error"), rollback
    assert rollback["state"] == "Available" and rollback["restored_revision"] == revision_of(before), rollback
    assert f"rolled Deployment {namespace}/web back from revision" in message, message
    after = kube.get("apps/v1", "Deployment", "web", namespace)
    # Release N's template is live again, and a pod of release N's ReplicaSet answers.
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == release["image"]
    assert after["spec"]["template"]["spec"]["containers"][0]["args"] == ["serve", "-addr", ":8080"]
    assert serving_hash(kube, namespace) == serving_before
    return message


def test_release_n_serves_from_the_registry_image_by_digest(kube, release_n):
    namespace = release_n["namespace"]
    pods = kube.list("v1", "Pod", namespace=namespace, label_selector="app=web")
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    digest = release_n["image"].split("@", 1)[1]
    assert [p["status"]["containerStatuses"][0]["imageID"].endswith(digest) for p in running] == [True]
    assert serving_hash(kube, namespace) == running[0]["metadata"]["labels"][HASH_LABEL]


def test_a_crash_on_start_fails_fast_with_the_exit_code_and_is_rolled_back(kube, release_n):
    message = fail_release(kube, release_n, deployment(release_n["image"], args=("crash-on-start",)), "crash")
    assert "CrashLoopBackOff" in message, message
    assert "last exit code 2" in message, message
    assert "Back-off restarting failed container" in message, message


def test_a_readiness_that_never_passes_ends_at_the_progress_deadline_with_the_probe_failure(kube, release_n):
    # The server runs and answers, but its /readyz says 503 for a day: the probe fails, nothing crashes.
    broken = deployment(release_n["image"], args=("serve", "-addr", ":8080", "-ready-after", "24h"), deadline=20)
    message = fail_release(kube, release_n, broken, "never-ready")
    assert "ProgressDeadlineExceeded" in message, message
    assert "Readiness probe failed" in message and "503" in message, message


def test_an_image_digest_the_registry_lacks_fails_fast_with_not_found(kube, registry, release_n):
    missing = f"{registry.host}/{REPOSITORY}@sha256:{'0' * 64}"
    message = fail_release(kube, release_n, deployment(missing), "missing-digest")
    assert "ErrImagePull" in message or "ImagePullBackOff" in message, message
    assert "not found" in message, message
    assert missing in message, message  # the kubelet's event names the image


def test_a_wrong_pull_secret_fails_fast_with_unauthorized(kube, release_n):
    # Always: the kubelet must pull (and authenticate) even though release N's image is on the node.
    broken = deployment(release_n["image"], secret="registry-bad", pull_policy="Always")
    message = fail_release(kube, release_n, broken, "wrong-pull-secret")
    assert "ErrImagePull" in message or "ImagePullBackOff" in message, message
    assert "401" in message or "unauthorized" in message.lower(), message
    print(f"\nfail-fast and rollback times (s): {TIMES}")
