"""Vault audit: every read of the pipeline's secrets is in the audit log, with values HMAC'ed, never in clear."""

from __future__ import annotations

import json

import pytest
from test_vault_leak import _forms  # same folder (no __init__.py: pytest puts it on sys.path)

pytestmark = [pytest.mark.vault, pytest.mark.postgres]


def _audit_entries(log_path) -> list[dict]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def test_secret_reads_are_audited_with_values_hmaced(vault, playbook, tmp_path, canary_secrets):
    audit_log = vault.state_dir / "audit.log"
    assert audit_log.exists(), "the dev server runs without its file audit device (scripts/services/vault.sh)"
    assert audit_log.stat().st_mode & 0o777 == 0o600
    before = len(audit_log.read_text().splitlines())

    path, values = canary_secrets
    result, dummy_proc = playbook.module("vault_secrets", {
        "url": vault.addr, "auth_method": "approle", "role_id": vault.role_id, "secret_id": vault.secret_id,
        "secrets": {f"CANARY_{i}": f"{path}#key{i}" for i in range(3)},
        "env_file": str(tmp_path / "app.env"),
    })
    assert not result.get("failed"), result.get("msg")

    entries = _audit_entries(audit_log)[before:]
    reads = [e for e in entries if e["type"] == "response" and e["request"]["operation"] == "read"
             and e["request"]["path"] == f"secret/data/{path}"]
    assert reads, "no audited read of secret/data/%s" % path
    read = reads[-1]
    # Who: the AppRole login's token, with the app's policy, and which role it came from.
    assert "velocity-app" in read["auth"]["policies"]
    assert read["auth"]["metadata"]["role_name"] == "velocity-app"
    assert read["auth"]["client_token"].startswith("hmac-sha256:")
    # What: the keys are there, every value is an HMAC.
    data = read["response"]["data"]["data"]
    assert set(data) == set(values)
    assert all(v.startswith("hmac-sha256:") for v in data.values())

    text = audit_log.read_text()
    leaked = [name for name, value in values.items() for form in _forms(value) if form in text]
    assert leaked == [], f"secret values in clear in the audit log: {leaked}"
