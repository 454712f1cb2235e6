"""The local control plane really runs Deployments: rollout, update, rollback,
stalled rollouts through kwok's failure stages, and TokenReview for Vault.

Everything here talks to a real kube-apiserver (hack/k8s/cluster.sh) through
the official kubernetes Python client; kwok plays the kubelet.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from tests.fixtures.k8s import wait_until

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

pytestmark = pytest.mark.k8s

REVISION = "deployment.kubernetes.io/revision"
SIMULATE = "velocity.dev/simulate"



@pytest.fixture
def namespace(k8s_api_client):
    core = client.CoreV1Api(k8s_api_client)
    name = f"velocity-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"velocity.dev/test": "k8s"})))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:  # already gone is fine
            if exc.status != 404:
                raise


@pytest.fixture
def apps(k8s_api_client):
    return client.AppsV1Api(k8s_api_client)


@pytest.fixture
def core(k8s_api_client):
    return client.CoreV1Api(k8s_api_client)


def deployment(name: str, image: str, replicas: int = 2, pod_labels: dict[str, str] | None = None,
               progress_deadline: int = 600) -> dict[str, Any]:
    labels = {"app": name, **(pod_labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8000}]}]},
            },
        },
    }


def condition(dep: client.V1Deployment, ctype: str) -> client.V1DeploymentCondition | None:
    return next((c for c in (dep.status.conditions or []) if c.type == ctype), None)


def rollout_complete(apps: client.AppsV1Api, ns: str, name: str) -> client.V1Deployment | None:
    """What `kubectl rollout status` checks: the controller saw the latest spec,
    every replica is updated and available, and no old replica is left."""
    dep = apps.read_namespaced_deployment(name, ns)
    st, want = dep.status, dep.spec.replicas
    available = condition(dep, "Available")
    if (
        (st.observed_generation or 0) >= dep.metadata.generation
        and (st.updated_replicas or 0) == want
        and (st.replicas or 0) == want
        and (st.available_replicas or 0) == want
        and available is not None
        and available.status == "True"
    ):
        return dep
    return None


def replica_sets(apps: client.AppsV1Api, ns: str, name: str) -> dict[str, client.V1ReplicaSet]:
    """The Deployment's ReplicaSets keyed by their revision annotation."""
    rss = apps.list_namespaced_replica_set(ns, label_selector=f"app={name}").items
    return {rs.metadata.annotations[REVISION]: rs for rs in rss}


def pods(core: client.CoreV1Api, ns: str, name: str) -> list[client.V1Pod]:
    return [p for p in core.list_namespaced_pod(ns, label_selector=f"app={name}").items
            if p.metadata.deletion_timestamp is None]


def pod_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def images(dep_or_rs) -> list[str]:
    return [c.image for c in dep_or_rs.spec.template.spec.containers]


def rollout_undo(apps: client.AppsV1Api, ns: str, name: str, to_revision: str) -> None:
    """What `kubectl rollout undo --to-revision` does: copy the pod template of
    that revision's ReplicaSet (minus pod-template-hash) back into the Deployment."""
    rs = replica_sets(apps, ns, name)[to_revision]
    template = apps.api_client.sanitize_for_serialization(copy.deepcopy(rs.spec.template))
    template["metadata"].get("labels", {}).pop("pod-template-hash", None)
    apps.patch_namespaced_deployment(name, ns, [{"op": "replace", "path": "/spec/template", "value": template}])


def test_kwok_nodes_are_registered_and_ready(core):
    nodes = core.list_node(label_selector="type=kwok").items
    assert len(nodes) >= 1
    for node in nodes:
        assert node.metadata.annotations.get("kwok.x-k8s.io/node") == "fake"
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", f"{node.metadata.name}: {ready}"


def test_deployment_rollout_update_and_rollback(apps, core, namespace):
    name = "web"
    apps.create_namespaced_deployment(namespace, deployment(name, "velocity/app:1.0.0"))

    dep = wait_until("revision 1 to be Available", lambda: rollout_complete(apps, namespace, name))
    assert dep.metadata.annotations[REVISION] == "1"
    running = pods(core, namespace, name)
    assert len(running) == 2
    for pod in running:
        assert pod.spec.node_name and pod.spec.node_name.startswith("kwok-node-"), pod.spec.node_name
        assert pod.status.phase == "Running" and pod_ready(pod), pod.status
        assert pod.status.pod_ip, "kwok assigns a pod IP"
    rs1 = replica_sets(apps, namespace, name)["1"]
    assert images(rs1) == ["velocity/app:1.0.0"]

    # Update the image: a second ReplicaSet, revision 2, takes over.
    apps.patch_namespaced_deployment(
        name, namespace, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "velocity/app:2.0.0"}]}}}}
    )
    dep = wait_until("revision 2 to roll out",
                     lambda: (d := rollout_complete(apps, namespace, name)) and d.metadata.generation >= 2 and d)
    assert dep.metadata.annotations[REVISION] == "2"
    history = replica_sets(apps, namespace, name)
    assert set(history) == {"1", "2"}
    assert images(history["2"]) == ["velocity/app:2.0.0"]
    assert history["2"].status.ready_replicas == 2
    assert (history["1"].spec.replicas, history["1"].metadata.uid) == (0, rs1.metadata.uid)
    assert wait_until("only 2.0.0 pods",
                      lambda: (ps := pods(core, namespace, name)) and len(ps) == 2
                      and all(p.spec.containers[0].image == "velocity/app:2.0.0" and pod_ready(p) for p in ps))

    # Roll back to revision 1: its ReplicaSet is scaled up again and becomes revision 3.
    rollout_undo(apps, namespace, name, "1")
    dep = wait_until("the rollback to roll out",
                     lambda: (d := rollout_complete(apps, namespace, name)) and d.metadata.generation >= 3 and d)
    assert images(dep) == ["velocity/app:1.0.0"]
    assert dep.metadata.annotations[REVISION] == "3"
    history = replica_sets(apps, namespace, name)
    assert set(history) == {"2", "3"}
    assert history["3"].metadata.uid == rs1.metadata.uid, "rollback reuses the revision-1 ReplicaSet"
    assert history["3"].metadata.annotations.get("deployment.kubernetes.io/revision-history") == "1"
    assert history["3"].spec.replicas == 2 and history["2"].spec.replicas == 0
    assert wait_until("only 1.0.0 pods",
                      lambda: (ps := pods(core, namespace, name)) and len(ps) == 2
                      and all(p.spec.containers[0].image == "velocity/app:1.0.0" and pod_ready(p) for p in ps))


def test_never_ready_stage_stops_deployment_at_progress_deadline(apps, core, namespace):
    name = "stuck"
    apps.create_namespaced_deployment(
        namespace,
        deployment(name, "velocity/app:1.0.0", replicas=1, pod_labels={SIMULATE: "never-ready"}, progress_deadline=5),
    )

    def deadline_exceeded():
        dep = apps.read_namespaced_deployment(name, namespace)
        progressing = condition(dep, "Progressing")
        return dep if progressing and progressing.reason == "ProgressDeadlineExceeded" else None

    dep = wait_until("Progressing=ProgressDeadlineExceeded", deadline_exceeded)
    assert condition(dep, "Progressing").status == "False"
    assert condition(dep, "Available").status == "False"
    assert not dep.status.available_replicas
    assert not dep.status.ready_replicas
    # The pod exists, was scheduled onto a kwok node and runs; it is only not Ready.
    (pod,) = pods(core, namespace, name)
    assert pod.spec.node_name.startswith("kwok-node-")
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].state.running is not None
    assert not pod_ready(pod)


def test_crash_stage_puts_pods_in_crash_loop(core, namespace):
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="crasher", labels={"app": "crasher", SIMULATE: "crash"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="velocity/app:broken")]),
    )
    core.create_namespaced_pod(namespace, pod)

    def crash_looping():
        p = core.read_namespaced_pod("crasher", namespace)
        statuses = p.status.container_statuses or []
        waiting = statuses and statuses[0].state.waiting
        return p if waiting and waiting.reason == "CrashLoopBackOff" else None

    p = wait_until("CrashLoopBackOff", crash_looping)
    status = p.status.container_statuses[0]
    assert not pod_ready(p) and status.ready is False
    assert status.last_state.terminated.exit_code == 1
    first = status.restart_count
    assert first >= 1
    assert wait_until("restartCount to grow",
                      lambda: core.read_namespaced_pod("crasher", namespace).status.container_statuses[0].restart_count
                      > first, timeout=60)


def test_failed_update_stalls_then_rollback_recovers(apps, core, namespace):
    name = "api"
    apps.create_namespaced_deployment(namespace, deployment(name, "velocity/app:1.0.0", replicas=2, progress_deadline=8))
    wait_until("revision 1 to be Available", lambda: rollout_complete(apps, namespace, name))

    # A bad release: its pods crash. With maxUnavailable=0 the old pods keep serving.
    apps.patch_namespaced_deployment(name, namespace, {"spec": {"template": {
        "metadata": {"labels": {SIMULATE: "crash"}},
        "spec": {"containers": [{"name": "app", "image": "velocity/app:2.0.0-bad"}]},
    }}})

    def stalled():
        dep = apps.read_namespaced_deployment(name, namespace)
        progressing = condition(dep, "Progressing")
        seen_update = dep.metadata.generation >= 2 and (dep.status.observed_generation or 0) >= 2
        return dep if seen_update and progressing and progressing.reason == "ProgressDeadlineExceeded" else None

    dep = wait_until("the bad rollout to exceed its deadline", stalled)
    assert dep.metadata.annotations[REVISION] == "2"
    bad_rs = replica_sets(apps, namespace, name)["2"]
    assert f'"{bad_rs.metadata.name}" has timed out progressing' in condition(dep, "Progressing").message
    assert dep.status.available_replicas == 2, "old pods stay available during the failed rollout"
    assert condition(dep, "Available").status == "True"
    assert replica_sets(apps, namespace, name)["2"].status.ready_replicas in (None, 0)

    rollout_undo(apps, namespace, name, "1")
    dep = wait_until("the rollback to complete",
                     lambda: (d := rollout_complete(apps, namespace, name)) and d.metadata.generation >= 3 and d)
    assert images(dep) == ["velocity/app:1.0.0"]
    assert SIMULATE not in dep.spec.template.metadata.labels
    assert condition(dep, "Progressing").reason == "NewReplicaSetAvailable"
    assert wait_until("bad pods gone", lambda: all(
        SIMULATE not in p.metadata.labels for p in pods(core, namespace, name)) and len(pods(core, namespace, name)) == 2)


def test_token_review_authenticates_service_account_tokens(k8s_cluster, k8s_api_client, core, namespace):
    auth = client.AuthenticationV1Api(k8s_api_client)
    rbac = client.RbacAuthorizationV1Api(k8s_api_client)

    # The reviewer, as Vault's Kubernetes auth is set up: a ServiceAccount bound to system:auth-delegator.
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="vault-auth")))
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="app")))
    binding = f"{namespace}-vault-auth-delegator"
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=binding),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="system:auth-delegator"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="vault-auth", namespace=namespace)],
    ))
    try:
        def token(sa: str, audiences: list[str] | None = None) -> str:
            req = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
                audiences=audiences or [], expiration_seconds=600))
            return core.create_namespaced_service_account_token(sa, namespace, req).status.token

        reviewer_token = token("vault-auth")
        app_token = token("app")
        vault_token = token("app", ["vault"])

        # Review with the reviewer's own token as bearer, exactly as Vault does.
        cfg = copy.copy(k8s_api_client.configuration)
        cfg.cert_file = cfg.key_file = None
        cfg.api_key = {"authorization": f"Bearer {reviewer_token}"}
        with client.ApiClient(cfg) as reviewer_client:
            reviewer = client.AuthenticationV1Api(reviewer_client)

            def review(tok: str, audiences: list[str] | None = None) -> client.V1TokenReviewStatus:
                body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=tok, audiences=audiences))
                return reviewer.create_token_review(body).status

            ok = review(app_token)
            assert ok.authenticated is True, ok.error
            assert ok.user.username == f"system:serviceaccount:{namespace}:app"
            assert f"system:serviceaccounts:{namespace}" in ok.user.groups

            tampered = app_token[:-4] + ("AAAA" if not app_token.endswith("AAAA") else "BBBB")
            assert not review(tampered).authenticated

            assert review(vault_token, ["vault"]).authenticated is True
            assert not review(vault_token).authenticated, "a token for audience 'vault' is not valid for the API audience"

            # The reviewer may review but not, say, read secrets.
            with pytest.raises(ApiException) as denied:
                client.CoreV1Api(reviewer_client).list_namespaced_secret(namespace)
            assert denied.value.status == 403

        # The admin client (cluster-admin certificate) is not a service account.
        whoami = client.AuthenticationV1Api(k8s_api_client).create_self_subject_review(client.V1SelfSubjectReview())
        assert "system:masters" in whoami.status.user_info.groups or k8s_cluster.external
        assert auth.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=app_token))).status.authenticated
    finally:
        rbac.delete_cluster_role_binding(binding)
