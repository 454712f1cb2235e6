"""Seconds-long run of benchmarks/ansiballz_cache.py, so it keeps working. Figures are not judged here."""

from __future__ import annotations

import pytest

from .smoke import run_smoke

pytestmark = [pytest.mark.k8s]


def test_ansiballz_cache_benchmark_runs_and_reports_both_sides(k8s_cluster, tmp_path):
    result = run_smoke("ansiballz_cache", tmp_path, timeout=600)
    sides = result["workloads"]["modules"]
    for side in ("on", "off"):
        assert sides[side]["cpu"]["n"] == 1 and sides[side]["cpu"]["median"] > 0
        assert sides[side]["wall"]["median"] > 0
