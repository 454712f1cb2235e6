"""scripts/services/vault.sh: tokens stay in 0600 files and out of stdout, logs and the process list."""

from __future__ import annotations

import subprocess

import pytest

from tests.fixtures.vault import VAULT_SH

pytestmark = [pytest.mark.vault]


def test_dev_server_token_file_is_private_and_never_printed(vault):
    env_out = subprocess.run(["bash", str(VAULT_SH), "env"], check=True, capture_output=True, text=True)
    start_out = subprocess.run(["bash", str(VAULT_SH), "start"], check=True, capture_output=True, text=True)
    assert env_out.stdout.splitlines() == [f"VAULT_ADDR={vault.addr}", f"VELOCITY_VAULT_TOKEN_FILE={vault.token_file}",
                                           f"VELOCITY_VAULT_AUDIT_LOG={vault.state_dir / 'audit.log'}"]
    assert vault.token_file.stat().st_mode & 0o777 == 0o600
    assert vault.token_file.parent.stat().st_mode & 0o777 == 0o700
    log = vault.state_dir / "server.log"
    assert log.stat().st_mode & 0o777 == 0o600
    for text in (env_out.stdout, env_out.stderr, start_out.stdout, start_out.stderr, log.read_text()):
        assert vault.root_token not in text
    ps = subprocess.run(["ps", "-eo", "args"], check=True, capture_output=True, text=True).stdout
    assert vault.root_token not in ps
    assert subprocess.run(["bash", str(VAULT_SH), "status"], check=False).returncode == 0


def test_file_server_keys_are_private_and_status_follows_seal(unsealed_vault_file):
    v = unsealed_vault_file
    init = v.state_dir / "init.json"
    assert init.stat().st_mode & 0o777 == 0o600 and v.token_file.stat().st_mode & 0o777 == 0o600
    assert subprocess.run(["bash", str(VAULT_SH), "status", "file"], check=False).returncode == 0
    subprocess.run(["bash", str(VAULT_SH), "seal", "file"], check=True, capture_output=True)
    assert subprocess.run(["bash", str(VAULT_SH), "status", "file"], check=False).returncode == 1
    subprocess.run(["bash", str(VAULT_SH), "unseal", "file"], check=True, capture_output=True)
    assert subprocess.run(["bash", str(VAULT_SH), "status", "file"], check=False).returncode == 0
    assert v.root_token not in (v.state_dir / "server.log").read_text()
