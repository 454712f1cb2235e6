#!/usr/bin/env python3
"""Benchmark 5: playbooks/site.yml end to end (`scripts/in-venv scripts/run-pipeline`), cold and warm.

  cold: before the run, the built app image (velocity/app:0.1.0, the tag site.yml uses) is removed
        (`docker rmi`, which also drops the runtime stage's cached layers, so the rebuilt image has a new
        ID and the deploy rolls the Deployment out again; the build stage's cache stays) and the SBOM
        and build-metadata artifacts under $VELOCITY_STATE_DIR/artifacts are deleted, so the image
        stage rebuilds, re-generates the SBOM and re-runs the smoke test. Nothing else is wiped:
        the base image, the wheelhouse, the Kubernetes binaries and the running services (Vault,
        PostgreSQL, the API server) stay, and so do the Vault secrets and the deployed objects.
  warm: the same command again right after, with nothing changed.
Cold and warm alternate (cold, warm, cold, warm ...). Wall clock of the whole command; the
stage lines of the velocity.platform.pipeline_progress callback give each stage's seconds, and
the PLAY RECAP the number of changed tasks. Loopback only: the local services as `make run` uses them.

    benchmarks/pipeline.py [--reps 2] [--warm-only]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, fmt, machine, summary, write_result

FULL_ARGS = ["--reps", "2"]
SMOKE_ARGS = ["--reps", "1", "--warm-only"]
IMAGE = "velocity/app:0.1.0"
STAGE = re.compile(r"^\[velocity\] stage (.+?)\s+(\S+) in ([\d.]+)s\s*$", re.M)
CHANGED_TASK = re.compile(r"TASK \[([^\]]+)\][^\n]*\n(?:[^\n]*\n)?changed:")
RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def artifacts_dir() -> Path:
    return Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity")) / "artifacts"


def make_cold() -> list[str]:
    removed = []
    if subprocess.run(["docker", "rmi", IMAGE], capture_output=True).returncode == 0:
        removed.append(IMAGE)
    art = artifacts_dir()
    sbom = art / "sbom"
    if sbom.exists():
        shutil.rmtree(sbom)
        removed.append(str(sbom))
    for meta in art.glob("*.build.json"):
        meta.unlink()
        removed.append(str(meta))
    return removed


def run_pipeline() -> dict:
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "in-venv"), str(ROOT / "scripts" / "run-pipeline")],
                          cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise RuntimeError(f"run-pipeline failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    stages = {name.strip(): float(sec) for name, _status, sec in STAGE.findall(proc.stdout)}
    recap = RECAP.findall(proc.stdout)
    changed = sum(int(r[1]) for r in recap)
    return {"seconds": elapsed, "stages": stages, "changed_tasks": changed,
            "changed_names": CHANGED_TASK.findall(proc.stdout)}


def render(r: dict) -> str:
    v = r["variants"]
    lines = [
        "## 5. Pipeline: `site.yml` end to end",
        "",
        "`scripts/in-venv scripts/run-pipeline` (secrets → build → deploy → verify) on the local inventory and services, "
        f"{r['settings']['reps']} repetition(s) per variant, cold and warm alternating. "
        "**Cold** = the app image `velocity/app:0.1.0` removed (`docker rmi`) and the SBOM and "
        "build-metadata artifacts deleted, so the image stage rebuilds the image, writes the SBOM and smoke-tests again; "
        "caches are kept (base image, wheelhouse, Kubernetes binaries), as are the running services, the Vault secrets and "
        "the deployed objects. `docker rmi` also drops the runtime stage's cached layers (the build stage's stay), so "
        "the rebuilt image gets a new ID and digest and the deploy stage rolls the Deployment out again (new digest "
        "annotation on the pod template). "
        "**Warm** = the same command again, nothing changed. Loopback only.",
        "",
        f"Reproduce: `scripts/in-venv python benchmarks/pipeline.py {' '.join(FULL_ARGS)}`.",
        "",
        "| variant | wall s, whole `run-pipeline`, median (min–max) | changed tasks | per stage, its plays' own time (median s) |",
        "|---|---|---|---|",
    ]
    for name in ("cold", "warm"):
        if name not in v:
            continue
        order = v[name].get("stage_order") or list(v[name]["stages"])
        stages = ", ".join(f"{k} {v[name]['stages'][k]:.1f}" for k in order)
        lines.append(f"| {name} | {fmt(v[name]['seconds'], digits=1)} | {', '.join(map(str, v[name]['changed_tasks']))} | {stages} |")
    if "cold" in v and "warm" in v:
        lines += ["", f"Cold / warm = {v['cold']['seconds']['median'] / v['warm']['seconds']['median']:.1f}×. "
                  "No anchor runs here: the pipeline has no off-the-shelf equivalent; the per-stage comparisons are sections 2–4."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--warm-only", action="store_true", help="only the warm run (the smoke test)")
    args = parser.parse_args()

    runs: dict[str, list[dict]] = {"warm": []} if args.warm_only else {"cold": [], "warm": []}
    removed: list[str] = []
    for rep in range(args.reps):
        for name in runs:
            if name == "cold":
                removed = make_cold()
            run = run_pipeline()
            runs[name].append(run)
            print(f"rep {rep + 1}/{args.reps} {name}: {run['seconds']:.1f}s changed={run['changed_tasks']} "
                  f"stages={run['stages']}", file=sys.stderr)
    variants = {}
    for name, rs in runs.items():
        stage_names = list(rs[0]["stages"])
        variants[name] = {
            "seconds": summary([r["seconds"] for r in rs]),
            "changed_tasks": [r["changed_tasks"] for r in rs],
            "changed_names": [r["changed_names"] for r in rs],
            "stage_order": stage_names,
            "stages": {s: summary([r["stages"].get(s, 0.0) for r in rs])["median"] for s in stage_names},
        }
    result = {"benchmark": "pipeline", "machine": machine(), "settings": vars(args), "variants": variants,
              "cold_removed": removed}
    path = write_result("pipeline", result)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
