# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes side of Vault's Kubernetes auth method.

Vault checks a pod's service-account token with the TokenReview API, which
needs a token allowed to create TokenReviews (ClusterRole
``system:auth-delegator``). :func:`reviewer_setup` creates, idempotently, the
app's service account, a reviewer service account bound to that role, and a
bounded-lifetime token for the reviewer, and returns what
``auth/kubernetes/config`` wants. :func:`service_account_token` issues a token
for a service account (TokenRequest), as the kubelet would mount in a pod.

Used by scripts/vault-bootstrap.py and the tests; not by the modules, which
only read a token file.
"""
from __future__ import annotations

import base64

REVIEWER_SA = "vault-token-reviewer"


def _api(kubeconfig: str):
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=kubeconfig)
    return client, api_client


def ca_pem_from_kubeconfig(kubeconfig: str) -> str:
    import yaml

    with open(kubeconfig) as handle:
        cfg = yaml.safe_load(handle)
    current = cfg.get("current-context")
    ctx = next((c["context"] for c in cfg.get("contexts", []) if c["name"] == current), cfg["contexts"][0]["context"])
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"]).decode()
    if cluster.get("certificate-authority"):
        with open(cluster["certificate-authority"]) as handle:
            return handle.read()
    raise ValueError("kubeconfig %s has no certificate authority for cluster %s" % (kubeconfig, ctx["cluster"]))


def ensure_service_account(kubeconfig: str, namespace: str, name: str) -> None:
    client, api_client = _api(kubeconfig)
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    try:
        core.read_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        core.read_namespaced_service_account(name, namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))


def service_account_token(kubeconfig: str, namespace: str, name: str, seconds: int = 3600,
                          audiences: list | None = None) -> str:
    client, api_client = _api(kubeconfig)
    spec = client.V1TokenRequestSpec(audiences=audiences or [], expiration_seconds=seconds)
    result = client.CoreV1Api(api_client).create_namespaced_service_account_token(
        name, namespace, client.AuthenticationV1TokenRequest(spec=spec))
    return result.status.token


def reviewer_setup(kubeconfig: str, namespace: str = "velocity", service_account: str = "velocity-app",
                   reviewer_seconds: int = 7 * 24 * 3600) -> dict:
    from kubernetes.client.rest import ApiException

    client, api_client = _api(kubeconfig)
    ensure_service_account(kubeconfig, namespace, service_account)
    ensure_service_account(kubeconfig, namespace, REVIEWER_SA)
    rbac = client.RbacAuthorizationV1Api(api_client)
    binding_name = "velocity-vault-token-reviewer"
    try:
        rbac.read_cluster_role_binding(binding_name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=binding_name),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                      name="system:auth-delegator"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=REVIEWER_SA, namespace=namespace)],
        ))
    return {
        "host": api_client.configuration.host,
        "ca_pem": ca_pem_from_kubeconfig(kubeconfig),
        "reviewer_jwt": service_account_token(kubeconfig, namespace, REVIEWER_SA, reviewer_seconds),
    }
