"""Seconds-long runs of the benchmark scripts, so they keep working. Figures are not judged here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_logging_overhead_benchmark_runs_and_reports_both_sides(tmp_path, postgres):
    env_out = {"VELOCITY_BENCH_OUT": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke", "--only", "logging_overhead"],
        env={**os.environ, **env_out}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "logging_overhead.json").read_text())
    for side in ("logging_on", "logging_off"):
        variant = result["variants"][side]
        assert variant["rps"]["median"] > 0
        assert variant["cpu_us_per_request"]["median"] > 0
        assert variant["errors"] == 0
    assert result["request_log_lines_written"] > 0
    assert set(result["overhead_pct"]) == {"cpu_per_request", "throughput", "p50", "p99"}
