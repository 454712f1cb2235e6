"""A token that stops working while a task runs is fetched again, against the real API server.

Service-account tokens from the TokenRequest API, each bound to a Secret: deleting the Secret makes the API
server refuse its token (401), as an expired token would be refused. The tokens are secrets: none of them may
appear in what a task prints."""

from __future__ import annotations

import base64
import json
import ssl
import stat
import time
import uuid
from pathlib import Path

import pytest
import urllib3
import yaml

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sApiError, K8sClient
from tests.runner import run_module

pytestmark = pytest.mark.k8s


@pytest.fixture
def account(k8s_cluster):
    """A namespace with a service account that may edit it, and a way to mint and void its tokens."""
    from kubernetes import client

    api = k8s_cluster.api_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    ns = "token-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="deployer")))
    rbac.create_namespaced_role_binding(ns, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="deployer-edit"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="deployer", namespace=ns)]))
    yield Account(k8s_cluster, ns, core)
    core.delete_namespace(ns)


class Account:
    def __init__(self, cluster, namespace, core):
        self.cluster, self.namespace, self.core = cluster, namespace, core
        config = yaml.safe_load(Path(cluster.kubeconfig).read_text(encoding="utf-8"))
        self.cluster_entry = config["clusters"][0]["cluster"]
        ca = base64.b64decode(self.cluster_entry["certificate-authority-data"]).decode()
        self.http = urllib3.PoolManager(ssl_context=ssl.create_default_context(cadata=ca))

    def token(self, name: str) -> str:
        """A token of the account, valid while Secret ``name`` exists."""
        from kubernetes import client

        self.core.create_namespaced_secret(self.namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name)))
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=3600,
            bound_object_ref=client.V1BoundObjectReference(api_version="v1", kind="Secret", name=name)))
        return self.core.create_namespaced_service_account_token("deployer", self.namespace, request).status.token

    def answer(self, token: str) -> int:
        """The status the API server gives a read of the namespace's ConfigMaps with ``token``."""
        response = self.http.request("GET", f"{self.cluster_entry['server']}/api/v1/namespaces/{self.namespace}/configmaps",
                                headers={"Authorization": "Bearer " + token}, timeout=10)
        return response.status

    def void(self, name: str, token: str) -> None:
        """Delete the Secret the token is bound to and wait until the API server refuses the token (it keeps a
        token it has accepted for up to 10 s)."""
        self.core.delete_namespaced_secret(name, self.namespace)
        deadline = time.monotonic() + 60
        while self.answer(token) != 401:
            assert time.monotonic() < deadline, "the API server still accepts the token of a deleted Secret"
            time.sleep(0.5)

    def kubeconfig(self, path, user: dict) -> str:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "deployer",
            "clusters": [{"name": "local", "cluster": self.cluster_entry}],
            "users": [{"name": "deployer", "user": user}],
            "contexts": [{"name": "deployer", "context": {"cluster": "local", "user": "deployer",
                                                           "namespace": self.namespace}}]}), encoding="utf-8")
        return str(path)


def _configmap(namespace: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"k": name}}


def test_a_rotated_token_file_is_read_again_when_the_old_token_is_refused(account, tmp_path):
    first, second = account.token("bind-first"), account.token("bind-second")
    token_file = tmp_path / "token"
    token_file.write_text(first + "\n", encoding="utf-8")
    c = K8sClient.from_params({"kubeconfig": account.kubeconfig(tmp_path / "kubeconfig", {"tokenFile": "token"})})
    try:
        assert c.list("v1", "ConfigMap", account.namespace) is not None
        # The first token stops working, as it would at its expiry; the file already holds its successor.
        account.void("bind-first", first)
        token_file.write_text(second + "\n", encoding="utf-8")
        c.apply(_configmap(account.namespace, "after-rotation"))
        assert c.token_refreshes == 1
        assert c.get("v1", "ConfigMap", "after-rotation", account.namespace)["data"] == {"k": "after-rotation"}

        # Nothing new in the file: the refusal is reported, saying a fresh token was tried; no token in it.
        account.void("bind-second", second)
        with pytest.raises(K8sApiError, match=r"refused \(HTTP 401\).*so was the one its source gives now") as err:
            c.get("v1", "ConfigMap", "after-rotation", account.namespace)
        assert c.token_refreshes == 1
        assert first not in str(err.value) and second not in str(err.value)
    finally:
        c.close()


def test_an_inline_token_is_not_replaced(account, tmp_path):
    token = account.token("bind-inline")
    c = K8sClient.from_params({"kubeconfig": account.kubeconfig(tmp_path / "kubeconfig", {"token": token})})
    try:
        assert c.list("v1", "ConfigMap", account.namespace) is not None
        account.void("bind-inline", token)
        with pytest.raises(K8sApiError, match=r"refused \(HTTP 401\): Unauthorized\. Check the credentials") as err:
            c.list("v1", "ConfigMap", account.namespace)
        assert token not in str(err.value) and c.token_refreshes == 0
    finally:
        c.close()


def test_manifest_apply_runs_an_exec_plugin_again_when_its_token_is_refused(account, tmp_path):
    """The plugin first gives a token that no longer works (it expired since the plugin cached it), then a
    valid one: the task loads the kubeconfig (plugin run 1), is refused, runs the plugin again and applies."""
    stale, fresh = account.token("bind-stale"), account.token("bind-fresh")
    account.void("bind-stale", stale)
    runs = tmp_path / "plugin-runs"
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([stale, fresh]), encoding="utf-8")
    tokens.chmod(0o600)
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(
        "#!/usr/bin/env python3\n"
        "import json, pathlib\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "n = len(runs.read_text()) if runs.exists() else 0\n"
        "runs.write_text('x' * (n + 1))\n"
        f"token = json.loads(pathlib.Path({str(tokens)!r}).read_text())[min(n, 1)]\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential',\n"
        "                  'status': {'token': token}}))\n", encoding="utf-8")
    plugin.chmod(stat.S_IRWXU)
    kubeconfig = account.kubeconfig(tmp_path / "kubeconfig", {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "interactiveMode": "Never"}})

    result, output = run_module(tmp_path, "velocity.platform.manifest_apply", {
        "kubeconfig": kubeconfig, "definitions": [_configmap(account.namespace, "by-exec")], "wait": False,
    }, verbosity=3)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and [o["action"] for o in result["objects"]] == ["created"]
    assert runs.read_text() == "xx"  # loaded once, refreshed once
    assert account.core.read_namespaced_config_map("by-exec", account.namespace).data == {"k": "by-exec"}
    assert stale not in output and fresh not in output
