"""The renewal schedule's numbers agree everywhere they are written down.

The database role's TTL comes from scripts/vault-bootstrap.py (--db-ttl, --db-max-ttl); min_ttl from the
inventories (and the role's default); the interval from the AWX schedule, the systemd timer,
scripts/lease-renewer and playbooks/renew.yml; renew_below from renew.yml. The rules
(artifacts/security/secrets-management-plan.md section 5): interval + a run's duration <= renew_below - min_ttl
(a deploy always finds min_ttl left), renew_below < TTL (idempotent runs), and the plan shows these numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE_DEFAULTS = ROOT / "collections/ansible_collections/velocity/platform/roles/vault_secrets/defaults/main.yml"


def _bootstrap_default(flag: str) -> int:
    text = (ROOT / "scripts/vault-bootstrap.py").read_text()
    return int(re.search(r'"%s", type=int, default=(\d+)' % re.escape(flag), text).group(1))


def _duration(text: str) -> int:
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"(\d+)\s*([a-z]*)", text.strip()).groups()
    return int(number) * units[unit or "s"]


def _renew_vars() -> dict:
    return yaml.safe_load((ROOT / "playbooks/renew.yml").read_text())[0]["vars"]


def _intervals() -> dict[str, int]:
    timer = (ROOT / "deploy/systemd/velocity-lease-renew.timer").read_text()
    rrule = next(s["rrule"] for s in yaml.safe_load((ROOT / "awx/templates.yml").read_text())["schedules"]
                 if s["job_template"] == "Velocity - renew")
    freq, interval = re.search(r"FREQ=(\w+);INTERVAL=(\d+)", rrule).groups()
    script = (ROOT / "scripts/lease-renewer").read_text()
    return {
        "renew.yml renew_interval": int(_renew_vars()["renew_interval"]),
        "systemd OnUnitActiveSec": _duration(re.search(r"^OnUnitActiveSec=(.+)$", timer, re.M).group(1)),
        "AWX schedule": int(interval) * {"MINUTELY": 60, "HOURLY": 3600}[freq],
        "lease-renewer default": int(re.search(r"VELOCITY_RENEW_INTERVAL:-(\d+)", script).group(1)),
    }


def _min_ttls() -> dict[str, int]:
    out = {"role default": yaml.safe_load(ROLE_DEFAULTS.read_text())["vault_secrets_database"]["min_ttl"]}
    for name in ("local", "example"):
        data = yaml.safe_load((ROOT / f"inventory/{name}/group_vars/all/vault.yml").read_text())
        out[name] = data["vault_secrets_database"]["min_ttl"]
    return out


def test_every_schedule_runs_at_the_same_interval():
    intervals = _intervals()
    assert len(set(intervals.values())) == 1, intervals


@pytest.mark.parametrize("where", ["role default", "local", "example"])
def test_renew_below_keeps_min_ttl_and_stays_idempotent(where):
    ttl = _bootstrap_default("--db-ttl")
    min_ttl = _min_ttls()[where]
    v = _renew_vars()
    interval, margin = int(v["renew_interval"]), int(v["renew_margin"])
    # renew_below as renew.yml computes it (min_ttl + interval + margin): check the template says so.
    assert "min_ttl" in v["renew_below"] and "renew_interval" in v["renew_below"] and "renew_margin" in v["renew_below"]
    renew_below = min_ttl + interval + margin
    assert interval + margin <= renew_below - min_ttl
    assert renew_below < ttl, f"{where}: renew_below {renew_below} >= TTL {ttl}: every run would renew"
    assert min_ttl < ttl < _bootstrap_default("--db-max-ttl")


def test_the_plan_states_these_numbers():
    plan = (ROOT / "artifacts/security/secrets-management-plan.md").read_text()
    section = plan.split("**The schedule and its numbers.**", 1)[1].split("*Tested*", 1)[0]
    v, mins = _renew_vars(), _min_ttls()
    expected = {_bootstrap_default("--db-ttl"), _bootstrap_default("--db-max-ttl"), int(v["renew_interval"]),
                int(v["renew_margin"]), mins["local"], mins["example"],
                mins["local"] + int(v["renew_interval"]) + int(v["renew_margin"]),
                mins["example"] + int(v["renew_interval"]) + int(v["renew_margin"])}
    shown = {int(n.replace("\u202f", "").replace(" ", "")) for n in re.findall(r"(\d[\d ]*) s\b", section)}
    assert expected <= shown, expected - shown
    issuer = re.search(r'"token_explicit_max_ttl": self\.args\.(\w+)', (ROOT / "scripts/vault-bootstrap.py").read_text())
    assert issuer and issuer.group(1) == "db_max_ttl"  # the orphan token lives as long as the lease may
