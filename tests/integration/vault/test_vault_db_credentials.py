"""Dynamic PostgreSQL users from Vault: issue, reuse, renew, revoke, revoke-prefix; tables outlive the user."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

pytestmark = [pytest.mark.vault, pytest.mark.postgres]


def _connect(postgres, creds: dict):
    return psycopg.connect(host=postgres.host, port=postgres.port, dbname=postgres.database,
                           user=creds["username"], password=creds["password"], connect_timeout=5)


def _module_args(vault, tmp_path, **extra):
    return dict({"url": vault.addr, "token": vault.app_token(), "role": "velocity-app",
                 "lease_state_file": str(tmp_path / "lease.json")}, **extra)


def test_issue_reuse_renew_revoke(vault, postgres, playbook, tmp_path):
    issued, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, return_values=True))
    assert issued["changed"] and issued["how"] == "issued", issued.get("msg")
    creds = issued["credentials"]
    assert (tmp_path / "lease.json").stat().st_mode & 0o777 == 0o600
    with _connect(postgres, creds) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "velocity_owner"

    reused, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path))
    assert not reused["changed"] and reused["how"] == "reused"
    assert reused["lease"]["lease_id"] == issued["lease"]["lease_id"]
    assert "credentials" not in reused and creds["password"] not in json.dumps(reused)

    renewed, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="renewed", increment=1800))
    assert renewed["changed"] and renewed["how"] == "renewed"
    assert 0 < renewed["lease"]["lease_duration"] <= 1800

    check, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="absent"), check=True)
    assert check["changed"] and (tmp_path / "lease.json").exists()
    with _connect(postgres, creds):
        pass  # check mode revoked nothing

    revoked, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="absent"))
    assert revoked["changed"] and revoked["revoked"] == 1 and not (tmp_path / "lease.json").exists()
    with pytest.raises(psycopg.OperationalError):
        _connect(postgres, creds)
    again, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="absent"))
    assert not again["changed"]


def test_expired_remembered_lease_is_replaced(vault, playbook, tmp_path):
    first, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path))
    # a min_ttl longer than the role's max TTL can never be met: a new lease replaces (and revokes) the old one
    second, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, min_ttl=10 ** 6))
    assert second["changed"] and second["how"] == "issued"
    assert second["lease"]["lease_id"] != first["lease"]["lease_id"]
    from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db

    with vault.client() as c:
        assert vault_db.lookup(c, first["lease"]["lease_id"]) is None  # the replaced lease was revoked
    playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="absent"))


@pytest.mark.serial  # revokes every lease of the velocity-app role, other tests' too (tests/parallel.py)
def test_revoke_prefix_needs_operator_and_revokes_all(vault, postgres, playbook, tmp_path):
    leases = []
    for i in range(3):
        r, _ = playbook.module("vault_db_credentials", dict(_module_args(vault, tmp_path / str(i)),
                                                             return_values=True))
        leases.append(r["credentials"])
    denied, _ = playbook.module("vault_db_credentials", {"url": vault.addr, "token": vault.app_token(),
                                                         "state": "absent", "revoke_prefix": "database/creds/velocity-app"})
    assert denied["failed"] and denied["error"] == "VaultPermissionDenied"
    with vault.client() as c:
        op = c.write("auth/token/create", {"policies": ["velocity-operator"], "ttl": "5m"})["auth"]["client_token"]
    done, _ = playbook.module("vault_db_credentials", {"url": vault.addr, "token": op, "state": "absent",
                                                       "revoke_prefix": "database/creds/velocity-app"})
    assert done["changed"] and done["revoked"] >= 3, done.get("msg")
    for creds in leases:
        with pytest.raises(psycopg.OperationalError):
            _connect(postgres, creds)
    nothing, _ = playbook.module("vault_db_credentials", {"url": vault.addr, "token": op, "state": "absent",
                                                          "revoke_prefix": "database/creds/velocity-app"})
    assert not nothing["changed"] and nothing["revoked"] == 0


def test_tables_created_by_a_dynamic_user_survive_its_revocation(vault, postgres, playbook, tmp_path):
    """The migration user is short-lived; the schema must not be: objects belong to velocity_owner."""
    table = f"vault_probe_{uuid.uuid4().hex[:8]}"
    first, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, return_values=True))
    with _connect(postgres, first["credentials"]) as conn:
        conn.execute(f"CREATE TABLE {table} (id int)")
        conn.execute(f"INSERT INTO {table} VALUES (42)")
    playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="absent"))
    try:
        assert postgres.psql(f"SELECT tableowner FROM pg_tables WHERE tablename = '{table}'") == "velocity_owner"
        second, _ = playbook.module("vault_db_credentials", _module_args(vault, tmp_path, return_values=True))
        with _connect(postgres, second["credentials"]) as conn:
            assert conn.execute(f"SELECT id FROM {table}").fetchone()[0] == 42
            conn.execute(f"ALTER TABLE {table} ADD COLUMN note text")  # a later migration can alter it
        playbook.module("vault_db_credentials", _module_args(vault, tmp_path, state="absent"))
    finally:
        postgres.psql(f"DROP TABLE IF EXISTS {table}")
