"""vault_secrets: check mode, namespaces, idempotence of the files, return_values opt-in."""

from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.vault import auth as vault_auth
from ansible_collections.velocity.platform.plugins.module_utils.vault import kv as vault_kv

pytestmark = [pytest.mark.vault, pytest.mark.postgres]


def test_check_mode_writes_nothing_and_predicts_change(vault, playbook, tmp_path, canary_secrets):
    path, values = canary_secrets
    args = {"url": vault.addr, "token": vault.root_token, "secrets": {"A": f"{path}#key0"},
            "env_file": str(tmp_path / "app.env"), "k8s_secret_name": "s", "k8s_secret_file": str(tmp_path / "s.json")}
    result, _ = playbook.module("vault_secrets", args, check=True)
    assert result["changed"] and not (tmp_path / "app.env").exists() and not (tmp_path / "s.json").exists()
    first, _ = playbook.module("vault_secrets", args)
    second, _ = playbook.module("vault_secrets", args)
    again_check, _ = playbook.module("vault_secrets", args, check=True)
    assert first["changed"] and not second["changed"] and not again_check["changed"]
    assert first["checksum"] == second["checksum"]
    assert "env" not in second and values["key0"] not in str(second)
    (tmp_path / "app.env").chmod(0o644)
    fixed, _ = playbook.module("vault_secrets", args)
    assert fixed["changed"] and (tmp_path / "app.env").stat().st_mode & 0o777 == 0o600


def test_return_values_is_an_explicit_opt_in(vault, playbook, tmp_path, canary_secrets):
    path, values = canary_secrets
    result, _ = playbook.module("vault_secrets", {"url": vault.addr, "token": vault.root_token,
                                                  "secrets": {"A": f"{path}#key0"}, "return_values": True,
                                                  "k8s_secret_name": "velocity-app-env"})
    assert result["env"] == {"A": values["key0"]}
    assert result["k8s_secret"]["kind"] == "Secret" and set(result["k8s_secret"]["data"]) == {"A"}


def test_namespace_from_environment(vault):
    """OpenBao namespaces: the same KV path in a child namespace, selected by VAULT_NAMESPACE."""
    with vault.client() as c:
        if c.read("sys/namespaces/team-a", allow_404=True) is None:
            c.write("sys/namespaces/team-a")
    ns = vault.client(namespace="team-a")
    with ns:
        if "secret/" not in ns.read("sys/mounts")["data"]:
            ns.write("sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        ns.write("secret/data/velocity/app", {"data": {"secret_key": "in-team-a"}})
    client = vault_auth.connect({"token": vault.root_token}, environ={"VAULT_ADDR": vault.addr,
                                                                      "VAULT_NAMESPACE": "team-a"})
    with client:
        values, _ = vault_kv.read_secrets(client, vault_kv.parse_refs({"S": "velocity/app#secret_key"}))
    assert values == {"S": "in-team-a"}
