#!/usr/bin/env python3
"""Benchmark 6: the compiled-code cache for Ansible modules (scripts/python/velocity_ansiballz_cache.py), on and off.

Every Ansible task that runs a module starts a Python process that imports the module and its
module_utils from a zip, and Python compiles all of that source again in each task; ansible-playbook
itself compiles the collection's action and callback plugins from source in every run, and parses every
module_util a module imports to pack it. The project's venv keeps the compiled code of both, and the import
statements the packing looks for, in a content-addressed cache (VELOCITY_ANSIBALLZ_CACHE=0 turns it off).
Side by side, alternating (on, off, off, on, ...) in one run:

  modules: a generated playbook of MODULE_TASKS tasks of real modules (ansible.builtin.ping and stat,
           velocity.platform.k8s_read against the local API server), the cost of a module task;
  site:    the warm `playbooks/site.yml` on the local inventory (after the pipeline benchmark has run it:
           nothing changes), the main job as a user runs it again.

Measured: wall seconds of the whole ansible-playbook process and the CPU seconds (user + system) of
it and every process it waited for (getrusage of the children), which is what two busy cores in CI
run short of. The cache is warmed once before the measured runs (a cold cache compiles as off does).

    benchmarks/ansiballz_cache.py [--reps 3] [--workloads modules site]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, fmt, machine, summary, write_result

FULL_ARGS = ["--reps", "3", "--workloads", "modules", "site"]
SMOKE_ARGS = ["--reps", "1", "--workloads", "modules"]
MODULE_TASKS = 12
KUBECONFIG = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity")) / "k8s" / "kubeconfig"


def modules_playbook(directory: Path) -> Path:
    tasks = []
    for i in range(MODULE_TASKS // 3):
        tasks += [
            f"    - name: ping {i}\n      ansible.builtin.ping: {{data: pong-{i}}}\n",
            f"    - name: stat {i}\n      ansible.builtin.stat: {{path: /etc/hostname}}\n",
            f"    - name: k8s_read {i}\n      velocity.platform.k8s_read:\n        kubeconfig: {KUBECONFIG}\n"
            "        queries: [{key: ns, api_version: v1, kind: Namespace, name: default}]\n",
        ]
    path = directory / "modules.yml"
    path.write_text("- name: Module tasks\n  hosts: localhost\n  gather_facts: false\n  tasks:\n" + "".join(tasks))
    return path


def run(playbook: Path, cache: str) -> tuple[float, float]:
    """Wall and CPU seconds (the process and everything it waited for) of one ansible-playbook run."""
    env = {**os.environ, "VELOCITY_ANSIBALLZ_CACHE": cache, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    cmd = [str(ROOT / "scripts" / "in-venv"), "ansible-playbook", str(playbook)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{playbook.name} (cache {cache}) failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def render(r: dict) -> str:
    lines = [
        "## 6. Compiled-code cache for Ansible modules (the project's venv)",
        "",
        "Every module task imports its module and module_utils from a zip, and Python compiles that source in "
        "every task; `scripts/venv.sh` installs a content-addressed cache of the compiled code into the venv "
        "(`scripts/python/velocity_ansiballz_cache.py`, off with `VELOCITY_ANSIBALLZ_CACHE=0`). The same cache "
        "also holds what Ansible's collection loader compiles in ansible-playbook itself (the collection's action "
        "and callback plugins and the module_utils they import, compiled from source in every run), and, per source "
        "file, the import statements that ansible-playbook's AnsiballZ builder looks for when it packs a module "
        "(it parsed the module and every module_util into a full syntax tree in every task to find them). On and off "
        f"alternating, {r['settings']['reps']} repetition(s) each, warm cache. **modules** = a playbook of "
        f"{MODULE_TASKS} module tasks (ping, stat, velocity.platform.k8s_read against the local API server); "
        "**site** = the warm `playbooks/site.yml` (nothing to change). CPU = user + system seconds of "
        "ansible-playbook and every process it waited for; wall = the whole process.",
        "",
        f"Reproduce: `scripts/in-venv python benchmarks/ansiballz_cache.py {' '.join(FULL_ARGS)}`.",
        "",
        "| workload | cache | CPU s, median (min–max) | wall s, median (min–max) |",
        "|---|---|---|---|",
    ]
    for workload, sides in r["workloads"].items():
        for side in ("on", "off"):
            lines.append(f"| {workload} | {side} | {fmt(sides[side]['cpu'], digits=2)} | "
                         f"{fmt(sides[side]['wall'], digits=2)} |")
    lines.append("")
    for workload, sides in r["workloads"].items():
        saved = 1 - sides["on"]["cpu"]["median"] / sides["off"]["cpu"]["median"]
        lines.append(f"- {workload}: the cache saves {saved:.0%} of the CPU "
                     f"({sides['off']['cpu']['median'] - sides['on']['cpu']['median']:.2f} s per run).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", choices=["modules", "site"], default=["modules", "site"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="velocity-bench-abz-") as tmp:
        playbooks = {"modules": modules_playbook(Path(tmp)), "site": ROOT / "playbooks" / "site.yml"}
        workloads = {}
        for workload in args.workloads:
            playbook = playbooks[workload]
            run(playbook, "on")  # warm the cache (and, for site, settle the release)
            samples: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in ("on", "off")}
            for rep in range(args.reps):
                for side in (("on", "off") if rep % 2 == 0 else ("off", "on")):
                    wall, cpu = run(playbook, "on" if side == "on" else "0")
                    samples[side]["wall"].append(wall)
                    samples[side]["cpu"].append(cpu)
                    print(f"{workload} rep {rep + 1}/{args.reps} cache {side}: wall {wall:.2f}s cpu {cpu:.2f}s",
                          file=sys.stderr)
            workloads[workload] = {side: {k: summary(v) for k, v in d.items()} for side, d in samples.items()}
    result = {"benchmark": "ansiballz_cache", "machine": machine(), "settings": vars(args), "workloads": workloads}
    path = write_result("ansiballz_cache", result)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
