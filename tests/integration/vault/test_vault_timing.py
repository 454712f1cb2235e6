"""Time per task for N secrets: ours (one login, one session, parallel reads) vs community.hashi_vault lookups.

The figures are written to $VELOCITY_STATE_DIR/vault/timing.json for the closing note.
Assertions are on structure (logins, requests), with a loose bound on time.
"""

from __future__ import annotations

import json
import os
import statistics
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.slow]
N = 20
RUNS = 3


def _task_seconds(playbook, tasks, extra) -> float:
    """Duration of the first task, from the ansible.posix.json callback (excludes playbook start-up)."""
    proc = playbook.run(tasks, extra, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                                           "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    report, _ = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])
    task = report["plays"][0]["tasks"][0]
    duration = task["task"]["duration"]
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(duration["end"]) - parse(duration["start"])).total_seconds()


def _dedicated_approle(vault, name: str) -> tuple[str, str]:
    """An AppRole of our own, so that counting its tokens ignores everyone else's
    (other tests and tools create and expire tokens on the same server meanwhile)."""
    with vault.client() as c:
        c.write(f"auth/approle/role/{name}", {"token_policies": ["velocity-app"], "token_ttl": "1h"})
        role_id = c.read(f"auth/approle/role/{name}/role-id")["data"]["role_id"]
        secret_id = c.write(f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
    return role_id, secret_id


def _token_count(vault, role: str) -> int:
    """Live tokens that logins to AppRole `role` created."""
    count = 0
    with vault.client() as c:
        for accessor in c.list("auth/token/accessors"):
            token = c.write("auth/token/lookup-accessor", {"accessor": accessor}) or {}
            if ((token.get("data") or {}).get("meta") or {}).get("role_name") == role:
                count += 1
    return count


def test_time_per_task_for_n_secrets(vault, playbook, tmp_path):
    paths = [f"velocity/bench/s{i:02d}" for i in range(N)]
    for p in paths:
        vault.put_secret(p, {"value": f"bench-{p}"})
    role = f"velocity-timing-{os.getpid()}"
    role_id, secret_id = _dedicated_approle(vault, role)
    auth = {"url": vault.addr, "auth_method": "approle", "role_id": role_id, "secret_id": secret_id}
    mapping = {f"BENCH_{i:02d}": f"{p}#value" for i, p in enumerate(paths)}
    out = tmp_path / "stats.json"

    ours = f"""\
    - name: ours
      velocity.platform.vault_secrets: "{{{{ auth | combine({{'secrets': mapping, 'env_file': '{tmp_path}/bench.env'}}) }}}}"
      register: r
    - name: keep stats
      ansible.builtin.copy:
        content: "{{{{ r.stats | to_json }}}}"
        dest: {out}
        mode: "0600"
    """
    anchor = """\
    - name: anchor (one lookup per secret, each logs in)
      ansible.builtin.set_fact:
        values: "{{ values | default({}) | combine({item.key: lookup('community.hashi_vault.vault_kv2_get', item.value.split('#')[0], engine_mount_point='secret', url=auth.url, auth_method='approle', role_id=auth.role_id, secret_id=auth.secret_id).secret.value}) }}"
      loop: "{{ mapping | dict2items }}"
      no_log: true
    """
    extra = {"auth": auth, "mapping": mapping}
    ours_times, module_ms = [], []
    tokens_before = _token_count(vault, role)
    for _ in range(RUNS):
        ours_times.append(_task_seconds(playbook, ours, extra))
        stats = json.loads(out.read_text())
        module_ms.append(stats["elapsed_ms"])
        assert stats["logins"] == 1 and stats["requests"] == N + 1  # login + N reads
    ours_tokens = (_token_count(vault, role) - tokens_before) / RUNS
    tokens_before = _token_count(vault, role)
    anchor_times = [_task_seconds(playbook, anchor, extra) for _ in range(RUNS)]
    anchor_tokens = (_token_count(vault, role) - tokens_before) / RUNS

    figures = {
        "n_secrets": N,
        "runs": RUNS,
        "ours_task_s": round(statistics.median(ours_times), 3),
        "ours_inside_module_ms": statistics.median(module_ms),
        "ours_tokens_created_per_task": ours_tokens,
        "ours_http_requests": N + 2,
        "anchor_task_s": round(statistics.median(anchor_times), 3),
        "anchor_tokens_created_per_task": anchor_tokens,
    }
    dest = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity")) / "vault" / "timing.json"
    dest.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    assert ours_tokens == 1 and anchor_tokens == N
    # Loose bound: the Vault work of one task with 20 secrets stays well under a second on this machine.
    assert figures["ours_inside_module_ms"] < 1000
