"""Seconds-long run of benchmarks/vault_fetch.py, so it keeps working. Figures are not judged here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from .smoke import run_smoke

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vault, pytest.mark.slow]
SIDES = ("ours", "looped", "lookups", "lookup_terms")


def test_vault_fetch_benchmark_runs_and_reports_every_side(tmp_path):
    assert os.geteuid() == 0, "the remote path of the Vault benchmark needs root (network namespaces): run as root"
    result = run_smoke("vault_fetch", tmp_path, timeout=300)
    assert set(result["scenarios"]) == {"loopback", "remote_tls"}
    for scenario in result["scenarios"].values():
        assert scenario["wall_s"]["empty"]["median"] > 0
        for side in SIDES:
            assert scenario["wall_s"][side]["median"] > 0
            assert isinstance(scenario["task_s"][side]["median"], float)
        assert scenario["ours_inside_task_ms"]["median"] > 0
    counted = result["scenarios"]["loopback"]["round_trips"]
    n = result["settings"]["secrets"]
    for side in SIDES:
        assert counted[side]["kv_reads"] == n
        assert counted[side]["logins"] >= 1
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vault_fetch import render

    assert render(result).startswith("## 2. Vault")
