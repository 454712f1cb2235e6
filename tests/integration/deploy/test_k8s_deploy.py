"""manifest_apply's logic against the real local control plane.

Objects that only need the API server (conflicts, check mode, re-apply) land on the kwok nodes. Failures use
real causes on the real node (hack/k8s/node.sh): the failing PreSync hook's container really exits 2, with the
node's `velocity.local/nettest:1` image (imported at node start, imagePullPolicy Never). No test here needs a
kwok-simulated failure (the `velocity.dev/simulate` labels) any more; the failed rollouts themselves are in
test_real_failures.py.
"""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import Deployer, DeployFailed, prepare
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


@pytest.fixture
def namespace(client):
    name = "it-deploy-" + uuid.uuid4().hex[:8]
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    client.delete({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def deployment(image, labels=None):
    pod_labels = {"app": "a", **(labels or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 10, "selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def presync_job(labels=None, deadline=5):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "annotations": {"argocd.argoproj.io/hook": "PreSync"}},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": deadline,
                     "template": {"metadata": {"labels": labels or {}},
                                  "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x"}]}}}}


NETTEST = "velocity.local/nettest:1"
ON_REAL_NODE = {
    "nodeSelector": {"velocity.dev/node": "real"},
    "tolerations": [{"key": "velocity.dev/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
}


def real_job(name, phase, args, deadline=120):
    """A hook Job whose container really runs on the real node: `nettest ARGS` (`serve -h` exits 0, an unknown
    command exits 2)."""
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": {"argocd.argoproj.io/hook": phase}},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": deadline,
                     "template": {"spec": {**ON_REAL_NODE, "restartPolicy": "Never",
                                           "terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "m", "image": NETTEST, "imagePullPolicy": "Never",
                                                           "args": list(args)}]}}}}


def real_deployment(image=NETTEST, pull_policy="Never"):
    """One replica of nettest serving on the real node, Ready through its real readiness probe."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 60, "selector": {"matchLabels": {"app": "a"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "app", "image": image, "imagePullPolicy": pull_policy,
                                      "args": ["serve", "-addr", ":8080"],
                                      "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080},
                                                         "periodSeconds": 1}}]}}}}


def run(client, namespace, objs, **kwargs):
    return Deployer(client, poll_interval=0.5, **kwargs).run(prepare(client, objs, namespace))


def test_kwok_completes_hook_jobs_and_reapply_is_unchanged(client, namespace):
    first = run(client, namespace, [deployment("i:1"), presync_job()])
    assert first["changed"] and first["hooks"][0]["result"] == "succeeded"
    second = run(client, namespace, [deployment("i:1"), presync_job()])
    assert not second["changed"] and second["hooks"] == []
    assert [o["action"] for o in second["objects"]] == ["unchanged"]


def test_failed_presync_hook_fails_fast_and_leaves_the_workload_alone(client, namespace):
    """The migration's container really crashes (exit code 2) on the real node: the Job fails (backoffLimit 0)."""
    run(client, namespace, [deployment("i:1")])
    with pytest.raises(DeployFailed) as failure:
        run(client, namespace, [deployment("i:2"), real_job("migrate", "PreSync", ["crash-on-start"])],
            hook_timeout=300)
    message = failure.value.message
    # The Job's Failed condition stopped the wait, not the hook timeout; the pod's exit code says why.
    assert "job failed (BackoffLimitExceeded)" in message, message
    assert "container m terminated: Error, exit code 2" in message, message
    assert "the workloads were not changed" in message
    live = client.get("apps/v1", "Deployment", "a", namespace)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "i:1"


def test_field_manager_conflict_names_field_and_manager_and_changes_nothing(client, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": namespace}, "data": {"k": "1"}}
    other = K8sClient(client.endpoint, field_manager="someone-else")
    other.apply(cm)
    mine = dict(cm, data={"k": "2"})
    with pytest.raises(DeployFailed) as failure:
        run(client, namespace, [mine, deployment("i:1")])
    message = failure.value.message
    assert "ConfigMap %s/c: server-side apply conflict, .data.k is managed by 'someone-else'" % namespace in message
    assert "nothing was changed" in message
    assert failure.value.result["conflicts"][0]["manager"] == "someone-else"
    assert client.get("apps/v1", "Deployment", "a", namespace) is None
    forced = run(client, namespace, [mine], force=True)
    assert forced["changed"]


def test_check_mode_predicts_without_changing(client, namespace):
    result = run(client, namespace, [deployment("i:1")], check_mode=True, want_diff=True)
    assert result["changed"] and result["objects"][0]["action"] == "create"
    assert result["diff"][0]["after"]["spec"]["template"]["spec"]["containers"][0]["image"] == "i:1"
    assert client.get("apps/v1", "Deployment", "a", namespace) is None
