"""The app, started with the env file the role writes, is ready against PostgreSQL as a Vault-issued user."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.slow]
HERE = Path(__file__).resolve().parent


def _app_ready():
    spec = importlib.util.spec_from_file_location("app_ready", HERE / "app_ready.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_app_passes_readyz_with_dynamic_user_then_revocation_cuts_it_off(vault, postgres, playbook, tmp_path):
    out_dir = tmp_path / "secrets"
    role_vars = {"vault_secrets_url": vault.addr, "vault_secrets_auth_method": "approle",
                 "vault_secrets_role_id": vault.role_id, "vault_secrets_secret_id": vault.secret_id,
                 "vault_secrets_output_dir": str(out_dir), "velocity_pg_port": postgres.port}
    tasks = """\
    - name: Deliver
      ansible.builtin.include_role:
        name: velocity.platform.vault_secrets
    """
    proc = playbook.run(tasks, role_vars)
    assert proc.returncode == 0, proc.stdout[-3000:]
    again = playbook.run(tasks, role_vars)
    assert "changed=0" in again.stdout  # idempotent: same lease reused, files unchanged

    app_ready = _app_ready()
    env = app_ready.load_env(str(out_dir / "app.env"))
    assert re.match(r"postgresql://v-[^:@]*velocity", env["DATABASE_URL"]), "not a dynamic user of the velocity role"
    result = app_ready.main(str(out_dir / "app.env"))
    assert result["migrate_rc"] == 0 and result["readyz_status"] == 200, result
    assert '"database":"ok"' in result["readyz"]

    revoked, _ = playbook.module("vault_db_credentials", {"url": vault.addr, "token": vault.root_token,
                                                          "state": "absent",
                                                          "lease_state_file": str(out_dir / "db-lease.json")})
    assert revoked["revoked"] == 1
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(env["DATABASE_URL"], connect_timeout=5)
    # The schema outlives the user: tables belong to velocity_owner.
    assert postgres.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'alembic_version'") == "velocity_owner"
