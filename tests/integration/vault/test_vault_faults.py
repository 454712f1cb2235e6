"""Each fault gives a clear, value-free error, at the library level and through the module (no traceback)."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.vault import auth as vault_auth
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultKeyMissing,
    VaultKVVersionMismatch,
    VaultNotFound,
    VaultPermissionDenied,
    VaultSealed,
    VaultTokenInvalid,
    VaultUnreachable,
)
from tests.fixtures.vault import VAULT_SH

pytestmark = [pytest.mark.vault, pytest.mark.postgres]


def _read(vault_addr: str, token: str, mapping: dict, **opts):
    client = vault_auth.connect(dict({"url": vault_addr, "token": token}, **opts), environ={})
    with client:
        return vault_kv.read_secrets(client, vault_kv.parse_refs(mapping), kv_version=opts.get("kv_version", 2),
                                     mount=opts.get("kv_mount", "secret"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_after_retries():
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(VaultUnreachable, match=rf"127.0.0.1:{port} is unreachable after 3 attempt\(s\)"):
        _read(f"http://127.0.0.1:{port}", "t", {"A": "x#y"}, retries=2, retry_backoff=0.1)
    assert time.monotonic() - started >= 0.3  # 0.1 + 0.2 backoff


def test_permission_denied_names_the_path(vault):
    vault.put_secret("other-team/db", {"password": "nope"})
    with pytest.raises(VaultPermissionDenied, match="permission denied on 'secret/data/other-team/db'"):
        _read(vault.addr, vault.app_token(), {"P": "other-team/db#password"})


def test_permission_denied_among_pipelined_reads_names_the_path(vault):
    """A 403 among reads sent back to back is read again the ordinary way, which names the path."""
    vault.put_secret("other-team/db", {"password": "nope"})
    with pytest.raises(VaultPermissionDenied, match="permission denied on 'secret/data/other-team/db'"):
        _read(vault.addr, vault.app_token(), {"S": "velocity/app#secret_key", "P": "other-team/db#password"})


def test_expired_token(vault):
    with vault.client() as c:
        token = c.write("auth/token/create", {"policies": ["velocity-app"], "ttl": "1s"})["auth"]["client_token"]
    time.sleep(2.5)
    with pytest.raises(VaultTokenInvalid, match="unknown, expired or revoked"):
        _read(vault.addr, token, {"S": "velocity/app#secret_key"})


def test_revoked_token(vault):
    token = vault.app_token()
    with vault.client(token=token) as c:
        c.write("auth/token/revoke-self")
    with pytest.raises(VaultTokenInvalid) as err:
        _read(vault.addr, token, {"S": "velocity/app#secret_key"})
    assert token not in str(err.value)


def test_missing_path(vault):
    with pytest.raises(VaultNotFound, match="no secret at 'secret/velocity/does-not-exist'"):
        _read(vault.addr, vault.root_token, {"X": "velocity/does-not-exist#k"})


def test_missing_key_lists_names_not_values(vault, canary_secrets):
    path, values = canary_secrets
    with pytest.raises(VaultKeyMissing) as err:
        _read(vault.addr, vault.root_token, {"X": f"{path}#nope"})
    msg = str(err.value)
    assert "secrets.X: key 'nope' not found" in msg and "key0, key1, key2" in msg
    assert not any(v in msg for v in values.values())


def test_missing_version(vault):
    path = "velocity/versioned"
    vault.put_secret(path, {"k": "v1"})
    latest = vault.put_secret(path, {"k": "v2"})
    values, versions = _read(vault.addr, vault.root_token, {"OLD": f"{path}#k@{latest - 1}", "NEW": f"{path}#k"})
    assert values == {"OLD": "v1", "NEW": "v2"}
    assert versions[path]["version"] == latest
    with pytest.raises(VaultNotFound, match="version 999"):
        _read(vault.addr, vault.root_token, {"X": f"{path}#k@999"})


def test_wrong_kv_version(vault):
    with vault.client() as c:
        if "kv1/" not in c.read("sys/mounts")["data"]:
            c.write("sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
        c.write("kv1/app", {"k": "v"})
    with pytest.raises(VaultKVVersionMismatch, match="mount 'kv1/' is KV version 1 but kv_version=2"):
        _read(vault.addr, vault.root_token, {"K": "app#k"}, kv_mount="kv1")
    values, _ = _read(vault.addr, vault.root_token, {"K": "app#k"}, kv_mount="kv1", kv_version=1)
    assert values == {"K": "v"}
    with pytest.raises(VaultKVVersionMismatch, match="mount 'secret/' is KV version 2 but kv_version=1"):
        _read(vault.addr, vault.root_token, {"K": "velocity/app#secret_key"}, kv_version=1)


@pytest.fixture
def sealed_vault(unsealed_vault_file):
    v = unsealed_vault_file
    v.put_secret("velocity/app", {"secret_key": "persisted-across-restart"})
    subprocess.run(["bash", str(VAULT_SH), "seal", "file"], check=True, capture_output=True)
    yield v


def test_sealed(sealed_vault):
    with pytest.raises(VaultSealed, match="is sealed: unseal it"):
        _read(sealed_vault.addr, sealed_vault.root_token, {"S": "velocity/app#secret_key"})


def test_restart_keeps_secrets_and_comes_back_sealed_until_unsealed(unsealed_vault_file):
    v = unsealed_vault_file
    v.put_secret("velocity/restart", {"k": "still-here"})
    env = {"VELOCITY_VAULT_NO_UNSEAL": "1"}
    import os

    subprocess.run(["bash", str(VAULT_SH), "restart", "file"], check=True, capture_output=True, env={**os.environ, **env})
    with pytest.raises(VaultSealed):
        _read(v.addr, v.root_token, {"K": "velocity/restart#k"})
    subprocess.run(["bash", str(VAULT_SH), "unseal", "file"], check=True, capture_output=True)
    values, _ = _read(v.addr, v.root_token, {"K": "velocity/restart#k"})
    assert values == {"K": "still-here"}


def test_tls_server_with_and_without_ca(tmp_path):
    subprocess.run(["bash", str(VAULT_SH), "start", "tls"], check=True, capture_output=True)
    out = subprocess.run(["bash", str(VAULT_SH), "env", "tls"], check=True, capture_output=True, text=True).stdout
    env = dict(line.split("=", 1) for line in out.splitlines())
    token = open(env["VELOCITY_VAULT_TOKEN_FILE"]).read().strip()
    with pytest.raises(VaultUnreachable, match=r"TLS error .* Set ca_cert"):
        vault_auth.connect({"url": env["VAULT_ADDR"], "token": token, "retries": 0}, environ={}).lookup_self()
    # A CA that did not sign the server's certificate: refused just the same, the token never sent in clear.
    wrong_ca = tmp_path / "wrong-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=wrong-ca",
                    "-keyout", str(tmp_path / "wrong-ca.key"), "-out", str(wrong_ca)], check=True, capture_output=True)
    with pytest.raises(VaultUnreachable, match=r"TLS error"):
        vault_auth.connect({"url": env["VAULT_ADDR"], "token": token, "retries": 0, "ca_cert": str(wrong_ca)},
                           environ={}).lookup_self()
    client = vault_auth.connect({"token": token}, environ={"VAULT_ADDR": env["VAULT_ADDR"],
                                                           "VAULT_CACERT": env["VAULT_CACERT"]})
    with client:
        assert client.lookup_self()["policies"] == ["root"]


# -- through the module: clear message, error class, no traceback, no value ---------------------------

@pytest.mark.parametrize("case", ["unreachable", "denied", "revoked", "missing_path", "missing_key", "kv_version"])
def test_module_faults_are_clear(vault, playbook, tmp_path, case, canary_secrets):
    path, values = canary_secrets
    args = {"url": vault.addr, "token": vault.root_token, "secrets": {"X": f"{path}#key0"},
            "env_file": str(tmp_path / "app.env"), "retries": 0}
    expected = {
        "unreachable": ("VaultUnreachable", "unreachable"),
        "denied": ("VaultPermissionDenied", "permission denied on 'secret/data/other-team"),
        "revoked": ("VaultTokenInvalid", "expired or revoked"),
        "missing_path": ("VaultNotFound", "no secret at 'secret/velocity/nothing-here'"),
        "missing_key": ("VaultKeyMissing", "key 'absent' not found"),
        "kv_version": ("VaultKVVersionMismatch", "is KV version 2 but kv_version=1"),
    }[case]
    if case == "unreachable":
        args["url"] = f"http://127.0.0.1:{_free_port()}"
    elif case == "denied":
        vault.put_secret("other-team/db", {"password": "nope"})
        args.update(token=vault.app_token(), secrets={"X": "other-team/db#password"})
    elif case == "revoked":
        token = vault.app_token()
        with vault.client(token=token) as c:
            c.write("auth/token/revoke-self")
        args["token"] = token
    elif case == "missing_path":
        args["secrets"] = {"X": "velocity/nothing-here#k"}
    elif case == "missing_key":
        args["secrets"] = {"X": f"{path}#absent"}
    elif case == "kv_version":
        args["kv_version"] = 1
    result, proc = playbook.module("vault_secrets", args, verbosity=3)
    assert result["failed"] is True
    assert result["error"] == expected[0]
    assert expected[1] in result["msg"]
    assert "Traceback" not in proc.stdout + proc.stderr
    # At -vvv the controller adds "exception": "(traceback unavailable)"; the module sends none.
    assert "File \"" not in str(result.get("exception", ""))
    assert not (tmp_path / "app.env").exists()
    for value in [*values.values(), vault.root_token]:
        assert value not in proc.stdout + proc.stderr
