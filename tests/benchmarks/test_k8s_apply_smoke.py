"""Seconds-long run of benchmarks/k8s_apply.py, so it keeps working. Figures are not judged here."""

from __future__ import annotations

import pytest

from .smoke import run_smoke

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def test_k8s_apply_benchmark_runs_and_reports_both_sides(k8s_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", k8s_cluster.kubeconfig)
    result = run_smoke("k8s_apply", tmp_path, timeout=600)
    variants = result["paths"]["loopback"]["variants"]
    for side in ("empty", "ours", "k8s_loop", "k8s_src", "ours_undo", "ours_undo_nowait", "k8s_rollback"):
        assert variants[side]["seconds"]["median"] > 0
    for side in ("ours", "k8s_loop", "k8s_src", "ours_undo", "k8s_rollback"):
        assert variants[side]["requests"]["total"] > 0
    assert result["paths"]["loopback"]["ratios"]["k8s_src_over_ours"] > 0
