"""benchmarks/run_all.py writes RESULTS.md whole from one run: goals summary, fresh sections only."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_all(tmp_path, monkeypatch):
    monkeypatch.setenv("VELOCITY_BENCH_OUT", str(tmp_path / "out"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    for name in ("common", "run_all", "logging_overhead"):
        sys.modules.pop(name, None)
    module = importlib.import_module("run_all")
    yield module
    for name in ("common", "run_all", "logging_overhead"):
        sys.modules.pop(name, None)


def _logging_result(best_cpu_pct: float) -> dict:
    def s(x):
        return {"median": x, "min": x, "max": x, "n": 2}

    side = {"cpu_us_per_request": s(400.0), "rps": s(3000.0), "p50_ms": s(4.0), "p99_ms": s(9.0), "errors": 0}
    return {"settings": {"workers": 2, "threads": 1, "connections": 16, "path": "/healthz", "reps": 2, "duration": 1,
                         "lines": 100, "line_reps": 2, "baseline": None},
            "variants": {"logging_on": side, "logging_off": side, "logging_off_control": side},
            "overhead_pct": {n: {"cpu_per_request": 1.0, "throughput": 0.5, "p50": 0.0, "p99": 0.0}
                             for n in ("logging_on", "logging_off_control")},
            "overhead_pct_best": {n: {"cpu_per_request": best_cpu_pct, "throughput": 0.0}
                                  for n in ("logging_on", "logging_off_control")},
            "request_log_lines_written": 10, "line_cost_us": {"now": s(4.0)}}


def _record(names, started_epoch, exit_code=0):
    return {"started": "2026-12-03T06:00:00+00:00", "finished": "2026-12-03T06:40:00+00:00", "seconds": 2400.0,
            "baseline": None,
            "benchmarks": {n: {"started_epoch": started_epoch, "started": "2026-12-03T06:00:00+00:00", "seconds": 60.0,
                               "exit": exit_code, "loadavg_before": "0.10 0.20 0.30", "loadavg_after": "0.40 0.30 0.30"}
                           for n in names}}


@pytest.mark.parametrize("best,verdict", [(1.5, "| met |"), (3.0, "| **NOT met** |")])
def test_a_fresh_result_is_rendered_with_its_goal_verdict_and_the_rest_say_not_run(run_all, tmp_path, best, verdict):
    out = tmp_path / "out"
    out.mkdir()
    (out / "logging_overhead.json").write_text(json.dumps(_logging_result(best)))
    results = tmp_path / "RESULTS.md"
    run_all.report(_record(["logging_overhead"], time.time() - 60), results)
    text = results.read_text()
    assert "every section from this one run (40 minutes in all)" in text
    goal_line = next(line for line in text.splitlines() if line.startswith("| request logging overhead"))
    assert verdict in goal_line and "benchmarks/logging_overhead.py" in goal_line
    assert "## 1. Request-logging overhead" in text and "CPU µs / line" in text
    assert "| logging_overhead | 1.0 | 0.10 0.20 0.30 | 0.40 0.30 0.30 | 0 |" in text
    for name in ("vault_fetch", "k8s_apply"):
        assert f"## {name}\n\nNot run in this `make bench` run" in text


def test_a_failed_or_stale_result_is_never_shown(run_all, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "logging_overhead.json"
    stale.write_text(json.dumps(_logging_result(0.5)))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))  # written by an earlier run
    results = tmp_path / "RESULTS.md"
    run_all.report(_record(["logging_overhead"], time.time() - 60), results)
    text = results.read_text()
    assert "## 1. Request-logging overhead" not in text
    assert "**Failed in this run** (exit 0, no result written" in text and "| logging_overhead | failed in this run | **NOT measured**" in text

    stale.touch()
    run_all.report(_record(["logging_overhead"], time.time() - 60, exit_code=2), results)
    assert "**Failed in this run** (exit 2" in results.read_text()
