"""One warm run of benchmarks/pipeline.py (site.yml, ~20 s), so the script keeps working. Figures are not judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.docker, pytest.mark.k8s, pytest.mark.slow]


def test_pipeline_benchmark_runs_warm(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke", "--only", "pipeline"],
        env={**os.environ, "VELOCITY_BENCH_OUT": str(tmp_path)}, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "pipeline.json").read_text())
    warm = result["variants"]["warm"]
    assert warm["seconds"]["median"] > 0
    assert warm["stages"]
