"""Our Kubernetes client (module_utils/k8s/client.py) against the real API server: it reads the kubeconfig
itself and sends its requests over urllib3, so a task with a certificate or token kubeconfig never imports
the kubernetes client library; TLS trust and tls-server-name are honoured; a user with an exec plugin goes
through the library's loader (which runs the plugin) and still works."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sApiError, K8sClient

pytestmark = pytest.mark.k8s

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _config(path):
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)  # a JSON kubeconfig is YAML too


def _write(tmp_path, name, config):
    path = tmp_path / name
    path.write_text(json.dumps(config), encoding="utf-8")
    return str(path)


def _default_namespace(tmp_path, name, config):
    """Reads Namespace default through a client made from `config` written as kubeconfig `name`."""
    client = K8sClient.from_params({"kubeconfig": _write(tmp_path, name, config)})
    try:
        return client.get("v1", "Namespace", "default")["metadata"]["name"]
    finally:
        client.close()


def test_a_task_with_a_certificate_kubeconfig_never_imports_the_kubernetes_library(k8s_cluster, tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sClient
        c = K8sClient.from_params({{"kubeconfig": {k8s_cluster.kubeconfig!r}}})
        ns = c.get("v1", "Namespace", "default")
        obj = {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "client-probe", "namespace": "default"}},
               "data": {{"a": "1"}}}}
        dry = c.apply(obj, dry_run=True)
        c.delete(obj)
        print(json.dumps({{"ns": ns["metadata"]["name"], "dry": dry["data"],
                          "loaded": sorted(m for m in sys.modules if m.split(".")[0] == "kubernetes")}}))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "collections"), ROOT]))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result == {"ns": "default", "dry": {"a": "1"}, "loaded": []}


def test_tls_server_name_and_the_ca_are_what_verifies_the_server(k8s_cluster, tmp_path):
    config = _config(k8s_cluster.kubeconfig)
    cluster = config["clusters"][0]["cluster"]
    # "kubernetes" is a SAN of the API server's certificate, "not-the-apiserver" is not.
    cluster["tls-server-name"] = "kubernetes"
    assert _default_namespace(tmp_path, "good", config) == "default"

    cluster["tls-server-name"] = "not-the-apiserver"
    wrong_name = K8sClient.from_params({"kubeconfig": _write(tmp_path, "wrong-name", config)})
    with pytest.raises(K8sApiError, match=r"cannot reach the Kubernetes API at https://127\.0\.0\.1.*not-the-apiserver") as err:
        wrong_name.get("v1", "Namespace", "default")
    assert err.value.unreachable
    wrong_name.close()

    # Skipping verification is what insecure-skip-tls-verify says (the wrong name no longer matters).
    cluster["insecure-skip-tls-verify"] = True
    cluster.pop("certificate-authority-data")
    assert _default_namespace(tmp_path, "insecure", config) == "default"

    # Without the cluster's CA the system trust store does not know the server.
    cluster.pop("insecure-skip-tls-verify")
    cluster.pop("tls-server-name")
    untrusted = K8sClient.from_params({"kubeconfig": _write(tmp_path, "untrusted", config)})
    with pytest.raises(K8sApiError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.get("v1", "Namespace", "default")
    untrusted.close()


def test_certificate_files_named_relative_to_the_kubeconfig(k8s_cluster, tmp_path):
    config = _config(k8s_cluster.kubeconfig)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(base64.b64decode(cluster.pop("certificate-authority-data")))
    (certs / "admin.crt").write_bytes(base64.b64decode(user.pop("client-certificate-data")))
    (certs / "admin.key").write_bytes(base64.b64decode(user.pop("client-key-data")))
    cluster["certificate-authority"] = "certs/ca.crt"
    user["client-certificate"] = "certs/admin.crt"
    user["client-key"] = "certs/admin.key"
    assert _default_namespace(tmp_path, "files", config) == "default"


def test_an_exec_plugin_user_goes_through_the_library_loader(k8s_cluster, tmp_path):
    config = _config(k8s_cluster.kubeconfig)
    user = config["users"][0]["user"]
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {
        "clientCertificateData": base64.b64decode(user.pop("client-certificate-data")).decode(),
        "clientKeyData": base64.b64decode(user.pop("client-key-data")).decode()}}
    plugin = tmp_path / "credential-plugin"
    plugin.write_text("#!/bin/sh\ncat <<'EOF'\n" + json.dumps(credential) + "\nEOF\n", encoding="utf-8")
    plugin.chmod(stat.S_IRWXU)
    user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                    "interactiveMode": "Never"}
    assert _default_namespace(tmp_path, "exec", config) == "default"
    assert "kubernetes.config" in sys.modules  # the plugin was run by the library's loader


def test_a_refused_request_names_the_object_and_the_server(client):
    with pytest.raises(K8sApiError, match=r"ConfigMap default/Bad_Name is invalid \(server-side dry run rejected it\)"):
        client.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name", "namespace": "default"}},
                     dry_run=True)
    assert client.get("v1", "ConfigMap", "no-such-configmap", "default") is None
    assert client.serves("apps/v1", "Deployment") and not client.serves("example.invalid/v1", "Widget")
    with pytest.raises(K8sApiError, match=r"does not serve kind Widget in example\.invalid/v1"):
        client.resource("example.invalid/v1", "Widget")
