#!/usr/bin/env python3
"""`make bench`: run every benchmark in this folder, then write RESULTS.md from their JSON.

    benchmarks/run_all.py [--only NAME ...] [--smoke] [--baseline REV] [--report-only]

Each benchmark is a module here (see ORDER) that writes out/bench/<name>.json and
renders its own RESULTS.md section; RESULTS.md is rewritten whole from this run
only (a benchmark that failed shows as failed, never with an older run's figures),
with a summary of the goals (a module's goal_list(result)), how long each
benchmark took and the load average around it. --smoke runs each for seconds,
as the test suite does, to prove the scripts still work (its figures mean nothing).
--baseline REV (or BENCH_BASELINE) adds `(before)` rows: the benchmarks whose module
sets BASELINE = True also time our code as it was at that git revision.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
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
ORDER = ["logging_overhead", "vault_fetch", "k8s_apply", "image_build", "pipeline", "ansiballz_cache", "zero_downtime"]


def available() -> list[str]:
    return [name for name in ORDER if (HERE / f"{name}.py").exists()]


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages: how quiet the machine was."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run_benchmarks(names: list[str], smoke: bool, baseline: str | None) -> dict:
    """Run each benchmark in its own process; what ran, for how long, on how loaded a machine."""
    record: dict = {"started": datetime.now(UTC).isoformat(timespec="seconds"), "baseline": baseline,
                    "benchmarks": {}}
    run_started = time.monotonic()
    for name in names:
        module = importlib.import_module(name)
        argv = list(module.SMOKE_ARGS if smoke else module.FULL_ARGS)
        if baseline and getattr(module, "BASELINE", False):
            argv += ["--baseline", baseline]
        entry = {"args": argv, "loadavg_before": loadavg(), "started_epoch": time.time(),
                 "started": datetime.now(UTC).isoformat(timespec="seconds")}
        started = time.monotonic()
        print(f"== benchmark {name} {' '.join(argv)} (load {entry['loadavg_before']})", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *argv])
        entry.update(seconds=round(time.monotonic() - started, 1), exit=proc.returncode, loadavg_after=loadavg())
        record["benchmarks"][name] = entry
        print(f"== benchmark {name}: exit {proc.returncode} in {entry['seconds']:.0f}s", file=sys.stderr, flush=True)
    record["seconds"] = round(time.monotonic() - run_started, 1)
    record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return record


def goal_rows(name: str, module, result: dict) -> list[str]:
    goal_list = getattr(module, "goal_list", None)
    if goal_list is None:
        return []
    return [f"| {g['goal']} | {g['figure']} | {'met' if g['met'] else '**NOT met**'} | `{g['command']}` |"
            for g in goal_list(result)]


def report(record: dict, results_path: Path) -> None:
    """RESULTS.md, whole: a summary of the goals, then every section, all from the run in ``record``."""
    sections, summary_rows, timing_rows = [], [], []
    for name in available():
        module = importlib.import_module(name)
        entry = record["benchmarks"].get(name)
        path = RESULTS_DIR / f"{name}.json"
        if entry is None:
            sections.append(f"## {name}\n\nNot run in this `make bench` run (`--only`): no figures shown.")
            continue
        timing_rows.append(f"| {name} | {entry['seconds'] / 60:.1f} | {entry['loadavg_before']} | "
                           f"{entry.get('loadavg_after', '?')} | {entry['exit']} |")
        fresh = path.exists() and path.stat().st_mtime >= entry["started_epoch"]
        if entry["exit"] or not fresh:
            why = f"exit {entry['exit']}" + ("" if fresh else ", no result written")
            sections.append(f"## {name}\n\n**Failed in this run** ({why}; see the `make bench` log): "
                            "no figures shown rather than an older run's.")
            summary_rows.append(f"| {name} | failed in this run | **NOT measured** | "
                                f"`scripts/in-venv python benchmarks/{name}.py` |")
            continue
        result = json.loads(path.read_text())
        sections.append(module.render(result))
        summary_rows += goal_rows(name, module, result)
    m = machine()
    minutes = record.get("seconds", 0) / 60
    header = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {record.get('finished', record['started'])[:16].replace('T', ' ')} UTC, every "
        f"section from this one run ({minutes:.0f} minutes in all). Machine: {m['cpus']} CPUs ({m['processor']}), "
        f"{m['platform']}, Python {m['python']}.",
        "Both sides of every comparison ran in the same run, against the same local services, interleaved. "
        "Wall figures are whole processes (what a user waits for); task figures, where a section has them, are the "
        "task's own time inside `ansible-playbook`.",
        *([f"Before/after: `{record['baseline']}` is the revision the `(before)` rows ran "
           "(`make bench BENCH_BASELINE=<rev>`)."] if record.get("baseline") else []),
        "",
        "## Goals (issue 17)",
        "",
        "| goal | figure | verdict | reproduce |",
        "|---|---|---|---|",
        *summary_rows,
        "",
        "The pipeline, lead-time and MTTR sections state their figures without a numeric goal.",
        "",
        "How long each benchmark took and how loaded the machine was (1/5/15-minute load averages before and after; "
        "a quiet 2-CPU machine stays well under 1):",
        "",
        "| benchmark | minutes | load before | load after | exit |",
        "|---|---|---|---|---|",
        *timing_rows,
        "",
        "Reproduce everything: `make bench` (runs `benchmarks/run_all.py`; "
        "`scripts/in-venv python benchmarks/run_all.py --report-only` rewrites this file from the last run's JSON).",
        "",
    ]
    results_path.write_text("\n".join([*header, "\n\n".join(sections), ""]))
    print(f"wrote {results_path}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="only write RESULTS.md from the last run")
    parser.add_argument("--baseline", metavar="REV", default=os.environ.get("BENCH_BASELINE") or None,
                        help="git revision whose code the benchmarks that can also time (the `(before)` rows)")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    record_path = RESULTS_DIR / "run_all.json"
    if args.report_only:
        if not record_path.exists():
            raise SystemExit(f"no {record_path}: run `make bench` first")
        record = json.loads(record_path.read_text())
    else:
        record = run_benchmarks(args.only or available(), args.smoke, args.baseline)
        if args.smoke:
            return 1 if any(e["exit"] for e in record["benchmarks"].values()) else 0
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    report(record, Path(args.results))
    return 1 if any(e["exit"] for e in record["benchmarks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
