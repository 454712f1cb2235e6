#!/usr/bin/env python3
"""`make bench`: run every benchmark in this folder, then write RESULTS.md from their JSON.

    benchmarks/run_all.py [--only NAME ...] [--smoke]

Each benchmark is a script here that writes out/bench/<name>.json; `render_<name>`
below turns that JSON into its RESULTS.md section. --smoke runs each for seconds,
as the test suite does, to prove the scripts still work (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS_DIR, machine  # noqa: E402

# name -> (script, full-run args, smoke args)
BENCHMARKS = {
    "logging_overhead": ("logging_overhead.py", ["--duration", "10", "--reps", "6"], ["--duration", "1", "--reps", "1"]),
}


def _fmt(s: dict, unit: str = "", digits: int = 1) -> str:
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def render_logging_overhead(r: dict) -> str:
    on, off = r["variants"]["logging_on"], r["variants"]["logging_off"]
    o = r["overhead_pct"]
    st = r["settings"]
    return "\n".join([
        "## 1. Request-logging overhead (app under Gunicorn)",
        "",
        f"Gunicorn {st['workers']} workers × 4 threads each side, wrk {st['threads']} thread / {st['connections']} connections "
        f"on `{st['path']}`, {st['reps']} × {st['duration']} s per side, interleaved (ABBA). Log lines go to a file.",
        "Median (min–max). CPU per request is read from /proc for the Gunicorn workers: it is the least noisy figure.",
        "",
        "| variant | CPU µs / request | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
        f"| logging on | {_fmt(on['cpu_us_per_request'])} | {_fmt(on['rps'], digits=0)} | {_fmt(on['p50_ms'], digits=2)} | {_fmt(on['p99_ms'], digits=2)} | {on['errors']} |",
        f"| logging off | {_fmt(off['cpu_us_per_request'])} | {_fmt(off['rps'], digits=0)} | {_fmt(off['p50_ms'], digits=2)} | {_fmt(off['p99_ms'], digits=2)} | {off['errors']} |",
        "",
        f"Overhead of logging: CPU per request **{o['cpu_per_request']:+.1f}%**, throughput {o['throughput']:+.1f}%, "
        f"p50 {o['p50']:+.1f}%, p99 {o['p99']:+.1f}% (goal: under 2%; the sprint plan's alarm: 5%).",
        f"Request log lines written during the run: {r['request_log_lines_written']}.",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    failed = []
    for name in args.only:
        script, full, smoke = BENCHMARKS[name]
        started = time.monotonic()
        print(f"== benchmark {name}", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(HERE / script), *(smoke if args.smoke else full)])
        print(f"== benchmark {name}: exit {proc.returncode} in {time.monotonic() - started:.0f}s", file=sys.stderr)
        if proc.returncode:
            failed.append(name)
    if args.smoke:
        return 1 if failed else 0

    sections = []
    for name in BENCHMARKS:
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            sections.append(globals()[f"render_{name}"](json.loads(path.read_text())))
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
