#!/usr/bin/env python3
"""`make bench`: run every benchmark in this folder, then write RESULTS.md from their JSON.

    benchmarks/run_all.py [--only NAME ...] [--smoke]

Each benchmark is a module here (see ORDER) that writes out/bench/<name>.json and
renders its own RESULTS.md section. --smoke runs each for seconds,
as the test suite does, to prove the scripts still work (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS_DIR, machine  # noqa: E402

# Run and reported in this order. Each is a module here with a main() that writes
# out/bench/<name>.json, FULL_ARGS and SMOKE_ARGS lists, and render(result) -> str
# (its section of RESULTS.md). A name whose module is missing is skipped.
ORDER = ["logging_overhead", "vault_fetch", "k8s_apply", "image_build", "pipeline", "zero_downtime"]


def available() -> list[str]:
    return [name for name in ORDER if (HERE / f"{name}.py").exists()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="only write RESULTS.md from the last results")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    failed = []
    for name in [] if args.report_only else (args.only or available()):
        module = importlib.import_module(name)
        started = time.monotonic()
        print(f"== benchmark {name}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *(module.SMOKE_ARGS if args.smoke else module.FULL_ARGS)])
        print(f"== benchmark {name}: exit {proc.returncode} in {time.monotonic() - started:.0f}s", file=sys.stderr)
        if proc.returncode:
            failed.append(name)
    if args.smoke:
        return 1 if failed else 0

    sections = []
    for name in available():
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            sections.append(importlib.import_module(name).render(json.loads(path.read_text())))
    m = machine()
    header = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
        f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['platform']}, Python {m['python']}.",
        "Both sides of every comparison ran in the same run, against the same local services, interleaved.",
        "",
    ]
    Path(args.results).write_text("\n".join([*header, "\n\n".join(sections), ""]))
    print(f"wrote {args.results}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
