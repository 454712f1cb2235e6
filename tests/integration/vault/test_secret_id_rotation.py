"""AppRole secret_id: bounded lifetime, and a rotation that leaves exactly one working secret_id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vault

ROOT = Path(__file__).resolve().parents[3]
ROTATE = ROOT / "scripts" / "rotate-approle-secret-id"


def _login(vault, secret_id: str) -> bool:
    import hvac
    import hvac.exceptions

    client = hvac.Client(url=vault.addr, token="")
    try:
        client.auth.approle.login(role_id=vault.role_id, secret_id=secret_id)
    except hvac.exceptions.VaultError:
        return False
    return True


def _operator_token(vault) -> str:
    import hvac

    root = hvac.Client(url=vault.addr, token=vault.root_token)
    return root.auth.token.create(policies=["velocity-operator"], ttl="10m", no_default_policy=True)["auth"]["client_token"]


def test_app_role_secret_ids_expire(vault):
    import hvac

    role = hvac.Client(url=vault.addr, token=vault.root_token).auth.approle.read_role("velocity-app")["data"]
    assert 0 < role["secret_id_ttl"] <= 90 * 24 * 3600


def test_rotation_issues_a_new_secret_id_and_destroys_the_old_one(vault, tmp_path):
    import hvac

    root = hvac.Client(url=vault.addr, token=vault.root_token)
    old = root.auth.approle.generate_secret_id("velocity-app")["data"]["secret_id"]
    secret_file = tmp_path / "approle-secret-id"
    secret_file.write_text(old)
    secret_file.chmod(0o600)
    token_file = tmp_path / "operator-token"
    token_file.write_text(_operator_token(vault))
    assert _login(vault, old)

    out = subprocess.run([sys.executable, str(ROTATE), "--addr", vault.addr, "--token-file", str(token_file),
                          "--secret-id-file", str(secret_file), "--ttl", "1h"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    new = secret_file.read_text().strip()

    assert new != old and secret_file.stat().st_mode & 0o777 == 0o600
    assert old not in out.stdout + out.stderr and new not in out.stdout + out.stderr
    assert result["destroyed_accessor"] and result["new_accessor"] != result["destroyed_accessor"]
    assert 0 < result["new_ttl_s"] <= 3600
    assert _login(vault, new)
    assert not _login(vault, old)


def test_rotation_with_a_token_that_may_not_rotate_names_the_policy(vault, tmp_path):
    secret_file = tmp_path / "approle-secret-id"
    secret_file.write_text("unchanged")
    token_file = tmp_path / "app-token"
    token_file.write_text(vault.app_token())
    out = subprocess.run([sys.executable, str(ROTATE), "--addr", vault.addr, "--token-file", str(token_file),
                          "--secret-id-file", str(secret_file)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "velocity-operator" in out.stderr
    assert secret_file.read_text() == "unchanged"
