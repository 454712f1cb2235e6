"""Seconds-long run of benchmarks/image_build.py, so it keeps working. Figures are not judged here."""

from __future__ import annotations

import subprocess

import pytest

from .smoke import run_smoke

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_image_build_benchmark_runs_and_reports_both_sides(app_image, tmp_path):
    # app_image runs the build stage, which builds velocity/base first on a fresh machine.
    assert subprocess.run(["docker", "images", "-q", "velocity/base"], capture_output=True, text=True).stdout.strip()
    result = run_smoke("image_build", tmp_path, timeout=900)
    for side in ("empty", "ours", "docker_image", "docker_image_force"):
        assert result["variants"][side]["seconds"]["median"] > 0
    for side in ("ours", "docker_image", "docker_image_force"):
        assert result["variants"][side]["changed"] and result["variants"][side]["requests"] > 0
    assert result["sizes"]["ours"] > 0 and result["sizes"]["naive"] > 0
