"""Run one benchmark of benchmarks/run_all.py in its seconds-long smoke mode and return its JSON result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_smoke(name: str, out: Path, timeout: int = 600) -> dict:
    """`run_all.py --smoke --only NAME` writing into `out`; fails the test with the benchmark's stderr tail."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--smoke", "--only", name],
                          cwd=ROOT, env={**os.environ, "VELOCITY_BENCH_OUT": str(out)}, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / f"{name}.json").read_text())
