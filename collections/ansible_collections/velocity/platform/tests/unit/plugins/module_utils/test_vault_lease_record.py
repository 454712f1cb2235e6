# -*- coding: utf-8 -*-
"""Unit tests for the shared lease record, the orphan issuer token and the input checks of the options
that go with them (vault_db_credentials lease_state_kv, issuer_token_role, renew_below).

The Vault side is the scripted loopback server of test_vault_logic; the real part (OpenBao keeping the lease
past the login token, a schedule renewing it) is tests/integration/vault/test_scheduled_renewal.py.
"""
from __future__ import annotations

import json

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import (
    VaultConfigError,
    VaultError,
)
from ansible_collections.velocity.platform.plugins.modules import vault_db_credentials as module
from ansible_collections.velocity.platform.tests.unit.plugins.module_utils.test_vault_logic import (
    ScriptedVault,
    make_client,
    ok,
)

LOGIN, ORPHAN = "login-token-canary", "orphan-token-canary"


@pytest.fixture
def server():
    servers = []

    def start(route):
        servers.append(ScriptedVault(route))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _params(**extra):
    p = dict(state="present", mount="database", role="velocity-app", lease_state_file=None, lease_id=None,
             revoke_prefix=None, min_ttl=600, reuse=True, increment=None, return_values=False,
             lease_state_kv=None, issuer_token_role=None, renew_below=None)
    p.update(extra)
    return p


@pytest.mark.parametrize("spec,problem", [
    ("velocity/leases/app", "must be a mapping"),
    ({"mount": "secret"}, "lease_state_kv.path None is not a KV path"),
    ({"path": "  "}, "is not a KV path"),
    ({"path": "velocity/../app"}, "is not a KV path"),
    ({"path": "velocity//app"}, "is not a KV path"),
    ({"mount": " / ", "path": "velocity/leases/app"}, "lease_state_kv.mount is empty"),
])
def test_kv_record_spec_refused_naming_the_field(spec, problem):
    with pytest.raises(VaultConfigError, match="lease_state_kv"):
        vault_db.check_kv_record("lease_state_kv", spec)
    with pytest.raises(VaultConfigError) as exc:
        module.validate(_params(lease_state_kv=spec))
    assert problem in str(exc.value)


def test_kv_record_spec_normalised():
    assert vault_db.check_kv_record("x", {"path": "/velocity/leases/app/"}) == ("secret", "velocity/leases/app")
    assert vault_db.check_kv_record("x", {"mount": "/kv/", "path": "a"}) == ("kv", "a")


@pytest.mark.parametrize("extra,problem", [
    (dict(issuer_token_role="velocity/db lease"), "issuer_token_role 'velocity/db lease' is not a role name"),
    (dict(issuer_token_role=""), "issuer_token_role is empty"),
    (dict(state="renewed", renew_below=-1, lease_id="database/creds/x/1"), "renew_below must be 0 or more"),
    (dict(state="renewed", role=None), "state=renewed needs lease_id, a lease_state_file or a lease_state_kv"),
])
def test_bad_options_fail_before_vault(extra, problem):
    with pytest.raises(VaultConfigError) as exc:
        module.validate(_params(**extra))
    assert problem in str(exc.value)


def test_renewed_with_only_a_record_is_valid():
    module.validate(_params(state="renewed", role=None, lease_state_kv={"path": "velocity/leases/app"}))


def test_issue_with_issuer_token_role_reads_with_the_orphan_token_and_keeps_only_its_accessor(server):
    def route(call):
        if call.path == "auth/token/create/velocity-db-lease":
            return ok({"auth": {"client_token": ORPHAN, "accessor": "acc-1", "orphan": True}})
        if call.path == "database/creds/velocity-app":
            return ok({"lease_id": "database/creds/velocity-app/L", "lease_duration": 3600, "renewable": True,
                       "data": {"username": "v-1", "password": "pw-canary"}})
        return 404, {"errors": []}
    vault = server(route)
    client = make_client(vault, token=LOGIN)
    lease = vault_db.issue(client, "database", "velocity-app", "velocity-db-lease")
    created, read = vault.calls
    assert created.headers["X-Vault-Token"] == LOGIN and read.headers["X-Vault-Token"] == ORPHAN
    assert client.token == LOGIN  # the login token is back for the next calls
    assert lease.issuer_accessor == "acc-1" and lease.password == "pw-canary"
    record = json.dumps(vault_db.record_of(lease))
    assert ORPHAN not in record and LOGIN not in record and "pw-canary" not in record
    assert json.loads(record)["expires_at"] == int(lease.expires_at)


def test_issue_restores_the_login_token_when_the_read_fails(server):
    def route(call):
        if call.path.startswith("auth/token/create/"):
            return ok({"auth": {"client_token": ORPHAN, "accessor": "acc-1"}})
        return 403, {"errors": ["permission denied"]}
    client = make_client(server(route), token=LOGIN)
    with pytest.raises(VaultError):
        vault_db.issue(client, "database", "velocity-app", "velocity-db-lease")
    assert client.token == LOGIN


def _kv_route(store: dict):
    """KV v2 at secret/: read, write, delete-latest (soft delete) of one record."""
    def route(call):
        if not call.path.startswith("secret/data/"):
            return 404, {"errors": []}
        if call.method == "GET":
            if store.get("data") is None:
                return 404, {"errors": []}
            return ok({"data": {"data": store["data"], "metadata": {"version": store["version"]}}})
        if call.method in ("POST", "PUT"):
            store["data"], store["version"] = call.body["data"], store.get("version", 0) + 1
            store["writes"] = store.get("writes", 0) + 1
            return ok({"data": {"version": store["version"]}})
        if call.method == "DELETE":
            store["data"] = None
            return 204, None
        return 405, {"errors": []}
    return route


def test_record_written_only_when_it_changes_and_deleted(server):
    store: dict = {}
    client = make_client(server(_kv_route(store)))
    where = ("secret", "velocity/leases/app")
    assert vault_db.load_record(client, where) is None
    lease = vault_db.Lease("database/creds/velocity-app/L", 3600, True, 1000.0, "v-1", "pw-canary", "velocity-app",
                           "database", "acc-1")
    assert vault_db.save_record(client, where, lease) is True
    assert "pw-canary" not in json.dumps(store["data"]) and store["data"]["expires_at"] == 4600
    # A reuse re-reads the TTL: the expiry moves by seconds, not a change.
    lease.issued_at += 5
    assert vault_db.save_record(client, where, lease) is False and store["writes"] == 1
    # A renewal moves it: written (slack=0).
    assert vault_db.save_record(client, where, lease, slack=0) is True and store["writes"] == 2
    back = vault_db.load_record(client, where)
    assert (back.lease_id, back.role, back.issuer_accessor, back.password) == (lease.lease_id, "velocity-app",
                                                                               "acc-1", "")
    assert vault_db.remove_record(client, where) is True
    assert vault_db.load_record(client, where) is None and vault_db.remove_record(client, where) is False


@pytest.mark.parametrize("value, expected", [
    ("2026-12-03T09:42:07.335779929Z", 1796290927),  # OpenBao's form: nanoseconds, UTC
    ("2026-12-03T09:42:07Z", 1796290927),
    ("2026-12-03T10:42:07+01:00", 1796290927),
    (None, None), ("", None), ("tomorrow", None), (1796290927, None),
])
def test_expire_time_is_read_to_the_second(value, expected):
    # A reused lease reports Vault's absolute expiry, the same on every run (the deploy writes it on the Secret).
    assert vault_db.expire_epoch(value) == expected
