"""A dynamic database lease kept alive past its TTL by the scheduled renewal, not by the test.

The lease is issued by vault_db_credentials with a short-TTL database role of the test's own
(TTL 40 s, max 5 min), through an orphan issuer token (issuer_token_role) and a login token that
expires after 20 s, and recorded in Vault KV (lease_state_kv). The schedule is the one the project
ships for shell users, scripts/lease-renewer (systemd is not PID 1 in this container, so the
timer in deploy/systemd/ cannot run here; it runs the same playbook), started by the test and
stopped by it: every few seconds it runs playbooks/renew.yml, which logs in with the app's AppRole
from the local inventory and renews the recorded lease. The test only observes: the PostgreSQL user
still logs in after 3 TTLs and Vault's expiry for the lease moved; once the schedule stops, the user
is dropped after the TTL. Control: a second lease issued the same way but recorded at a path no
schedule renews is dropped after its TTL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime

import psycopg
import pytest

from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import VaultTokenInvalid
from tests.runner import ROOT, ansible_env

pytestmark = [pytest.mark.vault, pytest.mark.postgres]

TTL = 40
MAX_TTL = 300
INTERVAL = 10  # renews when under RENEW_BELOW: at 20-30 s left of the 40 s TTL, every run of renew.yml costs CPU
RENEW_BELOW = 30


def _expire_time(vault, lease_id: str) -> float | None:
    with vault.client() as c:
        data = vault_db.lookup(c, lease_id)
    if data is None:
        return None  # unknown to Vault: expired or revoked
    return datetime.fromisoformat(data["expire_time"].replace("Z", "+00:00")).timestamp()


def _logs_in(postgres, creds: dict) -> bool:
    try:
        with psycopg.connect(host=postgres.host, port=postgres.port, dbname=postgres.database,
                             user=creds["username"], password=creds["password"], connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def _wait_dropped(postgres, creds: dict, deadline: float) -> float:
    while time.time() < deadline:
        if not _logs_in(postgres, creds):
            return time.time()
        time.sleep(2)
    raise AssertionError(f"{creds['username']} still logs in at the deadline")


@pytest.fixture
def short_role(vault, postgres):
    """A database connection, role (TTL 40 s), issuer token role and policies of this test only."""
    tag = f"sr-{uuid.uuid4().hex[:8]}"
    with vault.client() as c:
        app_role = c.read("database/roles/velocity-app")["data"]
        url = c.read("database/config/velocity-postgres")["data"]["connection_details"]["connection_url"]
        c.write(f"database/config/{tag}", {
            "plugin_name": "postgresql-database-plugin", "connection_url": url, "username": postgres.admin_user,
            "password": postgres.admin_password, "allowed_roles": [tag], "verify_connection": True})
        c.write(f"database/roles/{tag}", {
            "db_name": tag, "creation_statements": app_role["creation_statements"],
            "revocation_statements": app_role["revocation_statements"], "default_ttl": TTL, "max_ttl": MAX_TTL})
        c.write(f"sys/policies/acl/{tag}-issuer",
                {"policy": f'path "database/creds/{tag}" {{ capabilities = ["read"] }}'})
        c.write(f"sys/policies/acl/{tag}-login", {"policy": "\n".join([
            f'path "auth/token/create/{tag}" {{ capabilities = ["update"] }}',
            'path "sys/leases/lookup" { capabilities = ["update"] }',
            'path "secret/data/velocity/leases/*" { capabilities = ["create", "read", "update", "delete"] }'])})
        c.write(f"auth/token/roles/{tag}", {"allowed_policies": [f"{tag}-issuer"], "orphan": True,
                                            "renewable": False, "token_explicit_max_ttl": MAX_TTL})
    yield tag
    with vault.client() as c:
        c.write(f"sys/leases/revoke-prefix/database/creds/{tag}", {})
        for path in (f"auth/token/roles/{tag}", f"database/roles/{tag}", f"database/config/{tag}",
                     f"sys/policies/acl/{tag}-issuer", f"sys/policies/acl/{tag}-login",
                     f"secret/metadata/velocity/leases/{tag}", f"secret/metadata/velocity/leases/{tag}-control"):
            c.delete(path)


def _issue(vault, playbook, role: str, record: str) -> tuple[dict, str]:
    """Issue through the module with a login token of 20 s that dies long before the lease."""
    with vault.client() as c:
        login = c.write("auth/token/create", {"policies": [f"{role}-login"], "ttl": "20s",
                                              "no_default_policy": False})["auth"]["client_token"]
    result, _ = playbook.module("vault_db_credentials", {
        "url": vault.addr, "token": login, "mount": "database", "role": role, "issuer_token_role": role,
        "lease_state_kv": {"path": record}, "return_values": True})
    assert result.get("changed") and result["how"] == "issued" and result["record"] == "written", result.get("msg")
    return result, login


def test_schedule_keeps_lease_alive_past_its_ttl(vault, postgres, playbook, short_role, tmp_path):
    record, control_record = f"velocity/leases/{short_role}", f"velocity/leases/{short_role}-control"
    kept, login = _issue(vault, playbook, short_role, record)
    control, _ = _issue(vault, playbook, short_role, control_record)
    creds, control_creds = kept["credentials"], control["credentials"]
    lease_id = kept["lease"]["lease_id"]
    assert kept["lease"]["issuer_accessor"] and kept["lease"]["lease_duration"] <= TTL

    # The shared record: enough for another job, no password, no token.
    with vault.client() as c:
        stored = c.read(f"secret/data/{record}")["data"]["data"]
    assert stored["lease_id"] == lease_id and stored["role"] == short_role
    assert creds["password"] not in json.dumps(stored) and login not in json.dumps(stored)
    first_expiry = _expire_time(vault, lease_id)
    issued_at = time.time()

    log = tmp_path / "renewer.log"
    with log.open("w") as out:
        renewer = subprocess.Popen(
            [str(ROOT / "scripts" / "in-venv"), str(ROOT / "scripts" / "lease-renewer"), "--interval", str(INTERVAL),
             "--", "-e", f"renew_lease_record_path={record}", "-e", f"renew_below={RENEW_BELOW}"],
            cwd=ROOT, env=ansible_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Control: nothing renews it; it is gone after its TTL (plus Vault's expiry tick and slack).
        dropped_at = _wait_dropped(postgres, control_creds, issued_at + TTL + 90)
        # ... at its expiry, not before (the module's expires_at: when it was issued + its TTL).
        assert dropped_at >= control["lease"]["expires_at"] - 5, (dropped_at, control["lease"])
        # Three TTLs after the issue the scheduled lease still logs in, though its login token died at 20 s.
        while time.time() < issued_at + 3 * TTL:
            assert renewer.poll() is None, log.read_text()[-2000:]
            assert _logs_in(postgres, creds), f"dropped at +{time.time() - issued_at:.0f}s:\n{log.read_text()[-3000:]}"
            time.sleep(3)
        moved = _expire_time(vault, lease_id)
        assert moved is not None and moved > first_expiry + TTL, (first_expiry, moved)
        # ... and the token that issued it is gone: the lease outlived it (issuer_token_role).
        with pytest.raises(VaultTokenInvalid), vault.client(token=login) as c:
            c.read("auth/token/lookup-self")
    finally:
        os.killpg(renewer.pid, signal.SIGTERM)
        renewer.wait(timeout=60)
    text = log.read_text()
    assert "renewed:" in text and "run ok" in text, text[-3000:]
    assert creds["password"] not in text

    # Schedule stopped: the lease ends at its TTL and Vault drops the user.
    stopped_at = time.time()
    _wait_dropped(postgres, creds, stopped_at + TTL + 90)
    # The login can fail before Vault has removed the lease (a loaded machine, its expiry tick): wait for that too,
    # by the same deadline (seen once in CI, 2026-12-05).
    while _expire_time(vault, lease_id) is not None and time.time() < stopped_at + TTL + 90:
        time.sleep(2)
    assert _expire_time(vault, lease_id) is None


def _renew_playbook(record: str, *extra: str) -> subprocess.CompletedProcess:
    """playbooks/renew.yml as a scheduled job runs it: local inventory, the app's AppRole login."""
    return subprocess.run([str(ROOT / "scripts" / "in-venv"), "ansible-playbook", "playbooks/renew.yml",
                           "-e", f"renew_lease_record_path={record}", *extra],
                          cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


def test_secrets_stage_lease_renewed_and_revoked_by_other_jobs(vault, postgres, playbook, tmp_path):
    """The secrets stage (vault_secrets, no lease file: an AWX EE) records the lease; renew.yml renews it only
    when it runs short; another job revokes it through the record; renew.yml then says to re-issue."""
    record = f"velocity/leases/sr-{uuid.uuid4().hex[:8]}"
    login = vault.app_token()
    stage, _ = playbook.module("vault_secrets", {
        "url": vault.addr, "token": login, "return_values": True,
        "database": {"role": "velocity-app", "url_template": "postgresql://{username}:{password}@h/d",
                     "lease_state_kv": {"path": record}, "issuer_token_role": "velocity-db-lease"}})
    assert stage.get("changed") and stage["database"]["how"] == "issued", stage.get("msg")
    lease_id = stage["database"]["lease_id"]
    assert stage["database"]["issuer_accessor"]
    try:
        with vault.client() as c:
            stored = c.read(f"secret/data/{record}")["data"]["data"]
            c.write("auth/token/revoke", {"token": login})  # the stage's login ends; the lease does not
        assert stored["lease_id"] == lease_id and "password" not in stored
        assert _expire_time(vault, lease_id) is not None

        forced = _renew_playbook(record, "-e", "renew_below=100000")
        assert forced.returncode == 0 and "renewed: " + lease_id in forced.stdout, forced.stdout[-2000:]
        idle = _renew_playbook(record)  # 3600 s left > min_ttl 600 + interval 900: nothing to do
        assert idle.returncode == 0 and "current: " + lease_id in idle.stdout, idle.stdout[-2000:]
        assert "changed=0" in idle.stdout

        gone, _ = playbook.module("vault_db_credentials", {
            "url": vault.addr, "token": vault.app_token(), "state": "absent", "lease_state_kv": {"path": record}})
        assert gone["changed"] and gone["revoked"] == 1 and gone["record"] == "deleted", gone.get("msg")
        assert _expire_time(vault, lease_id) is None
        after = _renew_playbook(record)
        assert after.returncode != 0 and "state=present" in after.stdout, after.stdout[-2000:]
    finally:
        with vault.client() as c:
            if _expire_time(vault, lease_id) is not None:
                c.write("sys/leases/revoke", {"lease_id": lease_id})
            c.delete(f"secret/metadata/{record}")
