"""Seconds-long runs of the benchmark scripts, so they keep working. Figures are not judged here."""

from __future__ import annotations

import pytest

from .smoke import run_smoke

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_logging_overhead_benchmark_runs_and_reports_every_variant(tmp_path, postgres):
    result = run_smoke("logging_overhead", tmp_path, timeout=300)
    for side in ("logging_on", "logging_off", "logging_off_control"):
        variant = result["variants"][side]
        assert variant["rps"]["median"] > 0
        assert variant["cpu_us_per_request"]["median"] > 0
        assert variant["errors"] == 0
    assert result["request_log_lines_written"] > 0
    for side in ("logging_on", "logging_off_control"):
        assert set(result["overhead_pct"][side]) == {"cpu_per_request", "throughput", "p50", "p99"}
    assert result["line_cost_us"]["now"]["median"] > 0  # the in-process cost of one request line
