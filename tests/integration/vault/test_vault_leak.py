"""Leak test: canary secrets through the role at -vvvv --diff; they must exist only in the 0600 deliverables."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.slow]


def _forms(value: str) -> list[str]:
    """The value and the encodings a careless path could produce (base64 as in a Secret manifest)."""
    b64 = base64.b64encode(value.encode()).decode()
    return [value, b64, b64.rstrip("=")]


def _scan(root: Path, needles: list[str], skip: set[Path]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and path not in skip and not (skip & set(path.parents)):
            data = path.read_bytes().decode("utf-8", "replace")
            hits += [f"{path}: {n[:6]}..." for n in needles if n in data]
    return hits


def test_canaries_never_leave_the_env_file(vault, playbook, tmp_path, canary_secrets):
    path, values = canary_secrets
    out_dir = tmp_path / "secrets"
    log_file = tmp_path / "ansible.log"
    role_vars = {
        "vault_secrets_url": vault.addr,
        "vault_secrets_auth_method": "approle",
        "vault_secrets_role_id": vault.role_id,
        "vault_secrets_secret_id": vault.secret_id,
        "vault_secrets_env": {f"CANARY_{i}": f"{path}#key{i}" for i in range(3)} | {
            "SECRET_KEY": "velocity/app#secret_key"},
        "vault_secrets_output_dir": str(out_dir),
        "velocity_pg_port": 55432,
        # Off by default: this test asks for the no_log facts, to show they stay hidden.
        "vault_secrets_export_facts": True,
    }
    tasks = """\
    - name: Deliver
      ansible.builtin.include_role:
        name: velocity.platform.vault_secrets
    - name: The next role can use the facts (hidden)
      ansible.builtin.assert:
        that: vault_secrets_values | length == 5
        quiet: true
      no_log: true
    """
    started = time.time()
    env = {"ANSIBLE_LOG_PATH": str(log_file), "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "1"}
    first = playbook.run(tasks, role_vars, verbosity=4, env=env, diff=True)
    assert first.returncode == 0, first.stdout[-3000:]

    # Rotate one canary, so that the second run changes the file and shows a diff.
    rotated = dict(values, key0=values["key0"] + "ROTATED")
    vault.put_secret(path, rotated)
    second = playbook.run(tasks, role_vars, verbosity=4, env=env, diff=True)
    assert second.returncode == 0, second.stdout[-3000:]
    env_file, manifest = out_dir / "app.env", out_dir / "app-secret.json"

    # The module alone (values not returned, so its result and diff are shown): rotate again, diff at -vvvv.
    rotated2 = dict(rotated, key1=values["key1"] + "ROTATED")
    vault.put_secret(path, rotated2)
    result, third = playbook.module("vault_secrets", {
        "url": vault.addr, "auth_method": "approle", "role_id": vault.role_id, "secret_id": vault.secret_id,
        "secrets": role_vars["vault_secrets_env"], "env_file": str(tmp_path / "module.env")}, verbosity=4,
        diff=True, env=env)
    result, third = playbook.module("vault_secrets", {
        "url": vault.addr, "auth_method": "approle", "role_id": vault.role_id, "secret_id": vault.secret_id,
        "secrets": dict(role_vars["vault_secrets_env"], EXTRA=f"{path}#key2"), "env_file": str(tmp_path / "module.env")},
        verbosity=4, diff=True, env=env)
    assert result["changed"] and "EXTRA=<hidden, added>" in third.stdout, third.stdout[-2000:]
    assert "CANARY_1=<hidden>" in third.stdout
    assert env_file.stat().st_mode & 0o777 == 0o600 and manifest.stat().st_mode & 0o777 == 0o600
    content = env_file.read_text()
    assert all(f"CANARY_{i}={rotated[f'key{i}']}" in content for i in range(3))

    needles = [f for v in [*values.values(), rotated["key0"], rotated2["key1"], vault.secret_id] for f in _forms(v)]
    for proc in (first, second, third):
        leaked = [n[:6] for n in needles if n in proc.stdout or n in proc.stderr]
        assert not leaked, f"canary in ansible output: {leaked}"
    assert not [n for n in needles if n in log_file.read_text()]
    # Every other file the run touched: the play dir, the lease state, Ansible's temp dirs, the server logs.
    # runner/ holds the test's own input (its vars hold the AppRole secret_id), as is the bootstrap's secret-id file.
    hits = _scan(tmp_path, needles, skip={env_file, manifest, tmp_path / "module.env", tmp_path / "runner"})
    home_tmp = Path.home() / ".ansible" / "tmp"
    if home_tmp.exists():
        recent = [p for p in home_tmp.rglob("*") if p.is_file() and p.stat().st_mtime >= started]
        hits += [f"{p}" for p in recent for n in needles if n in p.read_bytes().decode("utf-8", "replace")]
    hits += _scan(vault.state_dir, needles, skip={vault.state_dir / "approle-secret-id"})
    assert not hits, hits
    # The manifest holds them only base64-encoded, as a Secret does.
    assert values["key1"] not in manifest.read_text()
    assert base64.b64encode(values["key1"].encode()).decode() in manifest.read_text()


def test_env_file_is_all_or_nothing(vault, playbook, tmp_path, canary_secrets):
    """A failing read leaves the previous env file untouched (no partial write, no temp file left)."""
    path, _values = canary_secrets
    env_file = tmp_path / "app.env"
    env_file.write_text("OLD=1\n")
    os.chmod(env_file, 0o600)
    result, _ = playbook.module("vault_secrets", {"url": vault.addr, "token": vault.root_token,
                                                  "secrets": {"A": f"{path}#key0", "B": f"{path}#missing"},
                                                  "env_file": str(env_file)})
    assert result["failed"] and result["error"] == "VaultKeyMissing"
    assert env_file.read_text() == "OLD=1\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".app.env")) == []
