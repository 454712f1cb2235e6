# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How module_utils/k8s/client.py turns a task's options and a kubeconfig into an Endpoint (no API server
needed; tests/integration/deploy/test_k8s_client.py connects with it to the real one)."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import (
    ConnectionError_,
    read_kubeconfig,
    resolve_endpoint,
)

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def kubeconfig(tmp_path, user, cluster=None, name="config", current="main"):
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": dict({"server": "https://10.0.0.1:6443"}, **(cluster or {}))}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "c", "user": "nobody"}}],
    }
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_certificate_data_token_and_tls_settings_are_read(tmp_path):
    path = kubeconfig(tmp_path, {"token": "tok-1"}, {
        "certificate-authority-data": base64.b64encode(CA_PEM.encode()).decode(),
        "tls-server-name": "kubernetes", "proxy-url": "http://proxy:3128"})
    endpoint = read_kubeconfig(path)
    assert (endpoint.host, endpoint.token, endpoint.ca_data, endpoint.server_name, endpoint.proxy, endpoint.verify) == (
        "https://10.0.0.1:6443", "tok-1", CA_PEM, "kubernetes", "http://proxy:3128", True)


def test_file_paths_are_relative_to_the_kubeconfig_and_a_token_file_is_read(tmp_path):
    (tmp_path / "token").write_text("tok-from-file\n")
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    path = kubeconfig(folder, {"tokenFile": "../token", "client-certificate": "certs/a.crt", "client-key": "certs/a.key"},
                      {"certificate-authority": "certs/ca.crt", "insecure-skip-tls-verify": True})
    endpoint = read_kubeconfig(path)
    assert endpoint.token == "tok-from-file"
    assert endpoint.ca_file == str(folder / "certs" / "ca.crt")
    assert (endpoint.cert_file, endpoint.key_file) == (str(folder / "certs" / "a.crt"), str(folder / "certs" / "a.key"))
    assert endpoint.verify is False


@pytest.mark.parametrize("plugin", [{"exec": {"command": "aws"}}, {"auth-provider": {"name": "oidc"}}])
def test_a_plugin_user_is_left_to_the_kubernetes_library(tmp_path, plugin):
    assert read_kubeconfig(kubeconfig(tmp_path, plugin)) is None


def test_a_context_whose_user_is_missing_names_it(tmp_path):
    path = kubeconfig(tmp_path, {"token": "t"})
    with pytest.raises(ConnectionError_, match=f"cannot load kubeconfig {path} context other: user 'nobody' is not "
                                               "among the users"):
        resolve_endpoint(kubeconfig=path, context="other", environ={})


def test_a_kubeconfig_that_is_not_yaml_is_refused_without_quoting_its_lines(tmp_path):
    path = tmp_path / "broken"
    path.write_text("users:\n- name: u\n  user:\n    token: CANARY-7f3a9 : : [\n")
    with pytest.raises(ConnectionError_) as err:
        resolve_endpoint(kubeconfig=str(path), environ={})
    assert "not valid YAML at line 4" in str(err.value)
    assert "CANARY-7f3a9" not in str(err.value)


def test_task_options_override_the_kubeconfig(tmp_path):
    path = kubeconfig(tmp_path, {"username": "admin", "password": "pw"})
    assert read_kubeconfig(path).basic == "admin:pw"
    endpoint = resolve_endpoint(kubeconfig=path, api_key="tok-2", validate_certs=False, ca_cert="/etc/ca.pem",
                                environ={})
    assert (endpoint.token, endpoint.basic, endpoint.verify, endpoint.ca_file) == ("tok-2", None, False, "/etc/ca.pem")
    explicit = resolve_endpoint(host="https://api.example:6443/", api_key="tok-3", environ={"KUBECONFIG": path})
    assert (explicit.host, explicit.token, explicit.verify) == ("https://api.example:6443", "tok-3", True)


def test_no_kubeconfig_and_no_cluster_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConnectionError_, match=r"no kubeconfig found .* and not running in a cluster: set kubeconfig"):
        resolve_endpoint(environ={"KUBECONFIG": str(tmp_path / "absent")})


def test_without_a_kubeconfig_a_pod_uses_its_service_account(tmp_path, monkeypatch):
    """The AWX-in-a-pod case (faked: this machine's tasks do not run in a pod): token and CA from the service
    account folder, the API server from the variables every pod gets; IPv6 addresses bracketed."""
    from ansible_collections.velocity.platform.plugins.module_utils.k8s import client

    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text(CA_PEM)
    monkeypatch.setattr(client, "IN_CLUSTER_DIR", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    endpoint = resolve_endpoint(environ={"KUBECONFIG": str(tmp_path / "absent")})
    assert (endpoint.host, endpoint.token, endpoint.ca_file) == ("https://[fd00::1]:443", "sa-token",
                                                                 str(tmp_path / "ca.crt"))
    # A kubeconfig the task names is never silently replaced by the service account.
    with pytest.raises(ConnectionError_, match="cannot load kubeconfig"):
        resolve_endpoint(kubeconfig=str(tmp_path / "absent"), environ={})


def test_a_token_that_can_change_says_where_a_fresh_one_comes_from(tmp_path, monkeypatch):
    """tokenFile and the service account's file are read again on refresh; an inline token, an api_key option
    and a user name/password have nowhere to get another from."""
    from ansible_collections.velocity.platform.plugins.module_utils.k8s import client

    (tmp_path / "token").write_text("first\n")
    from_file = read_kubeconfig(kubeconfig(tmp_path, {"tokenFile": "token"}))
    (tmp_path / "token").write_text("second\n")
    assert (from_file.token, from_file.refresh()) == ("first", "second")

    assert read_kubeconfig(kubeconfig(tmp_path, {"token": "inline"})).refresh is None
    assert read_kubeconfig(kubeconfig(tmp_path, {"username": "u", "password": "p"})).refresh is None
    overridden = resolve_endpoint(kubeconfig=kubeconfig(tmp_path, {"tokenFile": "token"}), api_key="given",
                                  environ={})
    assert (overridden.token, overridden.refresh) == ("given", None)

    monkeypatch.setattr(client, "IN_CLUSTER_DIR", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    pod = resolve_endpoint(environ={"KUBECONFIG": str(tmp_path / "absent")})
    (tmp_path / "token").write_text("rotated-by-the-kubelet\n")
    assert (pod.token, pod.refresh()) == ("second", "rotated-by-the-kubelet")
