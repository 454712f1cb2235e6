"""Every supported auth method logs in once against the real OpenBao and reads with the app policy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.vault import auth as vault_auth
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultAuthError,
    VaultPermissionDenied,
)

pytestmark = [pytest.mark.vault, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]
CLUSTER = ROOT / "hack" / "k8s" / "cluster.sh"


def _read_app_secret(options: dict) -> tuple[str, int]:
    client = vault_auth.connect(options, environ={})
    try:
        refs = vault_kv.parse_refs({"SECRET_KEY": "velocity/app#secret_key"})
        values, _ = vault_kv.read_secrets(client, refs)
        return values["SECRET_KEY"], client.login_count
    finally:
        client.close()


def _kv_secret_key(vault) -> str:
    with vault.client() as c:
        return c.read("secret/data/velocity/app")["data"]["data"]["secret_key"]


def test_token_auth_reads_with_app_policy(vault):
    value, logins = _read_app_secret({"url": vault.addr, "auth_method": "token", "token": vault.app_token()})
    assert value == _kv_secret_key(vault) and logins == 0


def test_token_file_auth(vault):
    value, _ = _read_app_secret({"url": vault.addr, "token_file": str(vault.token_file)})
    assert value == _kv_secret_key(vault)


def test_token_from_environment(vault):
    client = vault_auth.connect({}, environ={"VAULT_ADDR": vault.addr, "VAULT_TOKEN": vault.app_token()})
    with client:
        assert "velocity-app" in client.lookup_self()["policies"]


def test_approle_logs_in_once_and_gets_only_the_app_policy(vault):
    opts = {"url": vault.addr, "auth_method": "approle", "role_id": vault.role_id, "secret_id": vault.secret_id}
    value, logins = _read_app_secret(opts)
    assert value == _kv_secret_key(vault) and logins == 1
    client = vault_auth.connect(opts, environ={})
    with client:
        assert sorted(client.lookup_self()["policies"]) == ["default", "velocity-app"]
        with pytest.raises(VaultPermissionDenied, match="permission denied on 'sys/policies/acl/velocity-app'"):
            client.read("sys/policies/acl/velocity-app")


def test_approle_wrong_secret_id_is_a_clear_auth_error(vault):
    with pytest.raises(VaultAuthError, match=r"AppRole login .* failed \(HTTP 400"):
        vault_auth.connect({"url": vault.addr, "auth_method": "approle", "role_id": vault.role_id,
                            "secret_id": "not-the-secret-id"}, environ={})


def test_jwt_auth_with_locally_signed_token(vault, tmp_path):
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text(vault.mint_jwt())
    value, logins = _read_app_secret({"url": vault.addr, "auth_method": "jwt", "role_id": "velocity-app",
                                      "jwt_file": str(jwt_file)})
    assert value == _kv_secret_key(vault) and logins == 1


@pytest.mark.parametrize("claims,reason", [
    ({"ttl": -60}, "expired"),
    ({"aud": "someone-else"}, "wrong audience"),
    ({"project": "other"}, "wrong bound claim"),
])
def test_jwt_auth_refuses_bad_tokens(vault, claims, reason):
    ttl = claims.pop("ttl", 300)
    with pytest.raises(VaultAuthError, match="JWT login"):
        vault_auth.connect({"url": vault.addr, "auth_method": "jwt", "role_id": "velocity-app",
                            "jwt": vault.mint_jwt(ttl=ttl, **claims)}, environ={})


@pytest.fixture(scope="module")
def kubeconfig(vault) -> str:
    """Start the local control plane (hack/k8s/cluster.sh) and configure Vault's Kubernetes auth on it."""
    if not CLUSTER.exists():
        pytest.fail("hack/k8s/cluster.sh is missing: the Kubernetes auth test needs the local control plane")
    out = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-2000:]
    path = out.stdout.strip().splitlines()[-1]
    boot = subprocess.run(["bash", str(ROOT / "scripts" / "vault-bootstrap.sh"), "dev", "--kubeconfig", path],
                          capture_output=True, text=True, timeout=300)
    assert boot.returncode == 0, boot.stderr[-2000:]
    return path


@pytest.mark.k8s
def test_kubernetes_auth_with_service_account_token(vault, kubeconfig, tmp_path):
    from scripts import vault_k8s

    token_file = tmp_path / "token"
    token_file.write_text(vault_k8s.service_account_token(kubeconfig, "velocity", "velocity-app", 600))
    value, logins = _read_app_secret({"url": vault.addr, "auth_method": "kubernetes", "role_id": "velocity-app",
                                      "kubernetes_token_path": str(token_file)})
    assert value == _kv_secret_key(vault) and logins == 1


@pytest.mark.k8s
def test_kubernetes_auth_refuses_other_service_accounts(vault, kubeconfig):
    from scripts import vault_k8s

    jwt = vault_k8s.service_account_token(kubeconfig, "velocity", vault_k8s.REVIEWER_SA, 600)
    with pytest.raises(VaultAuthError, match="service account name not authorized"):
        vault_auth.connect({"url": vault.addr, "auth_method": "kubernetes", "role_id": "velocity-app", "jwt": jwt},
                           environ={})


def test_module_logs_in_once_per_task_with_approle(vault, playbook, tmp_path):
    secrets = {f"S{i}": "velocity/app#secret_key" for i in range(5)}
    result, _proc = playbook.module("vault_secrets", {
        "url": vault.addr, "auth_method": "approle", "role_id": vault.role_id, "secret_id": vault.secret_id,
        "secrets": secrets, "env_file": str(tmp_path / "out.env")})
    assert not result.get("failed"), result.get("msg")
    assert result["stats"]["logins"] == 1
    # login + one read for the five variables taken from the same path (the mount is looked up only on a failure)
    assert result["stats"]["requests"] == 2
    assert "env" not in result
