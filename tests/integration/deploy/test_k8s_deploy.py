"""manifest_apply's logic against the real local control plane (kwok nodes)."""

from __future__ import annotations

import time
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


def run(client, namespace, objs, **kwargs):
    return Deployer(client, poll_interval=0.5, **kwargs).run(prepare(client, objs, namespace))


def test_kwok_completes_hook_jobs_and_reapply_is_unchanged(client, namespace):
    first = run(client, namespace, [deployment("i:1"), presync_job()])
    assert first["changed"] and first["hooks"][0]["result"] == "succeeded"
    second = run(client, namespace, [deployment("i:1"), presync_job()])
    assert not second["changed"] and second["hooks"] == []
    assert [o["action"] for o in second["objects"]] == ["unchanged"]


def test_failed_presync_hook_fails_fast_and_leaves_the_workload_alone(client, namespace):
    run(client, namespace, [deployment("i:1")])
    started = time.monotonic()
    with pytest.raises(DeployFailed) as failure:
        run(client, namespace, [deployment("i:2"), presync_job({"velocity.dev/simulate": "crash"}, deadline=3)],
            hook_timeout=120)
    assert time.monotonic() - started < 60  # the Job's Failed condition stops the wait, not the timeout
    assert "job failed (DeadlineExceeded)" in failure.value.message
    assert "the workloads were not changed" in failure.value.message
    live = client.get("apps/v1", "Deployment", "a", namespace)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "i:1"


def test_field_manager_conflict_names_field_and_manager_and_changes_nothing(client, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": namespace}, "data": {"k": "1"}}
    other = K8sClient(client.api_client, field_manager="someone-else")
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
