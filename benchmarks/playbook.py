"""Run a generated playbook with the project's ansible and time it (shared by the Ansible benchmarks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def ansible_env(**extra: str) -> dict[str, str]:
    env = {**os.environ}
    env.update({
        "ANSIBLE_CONFIG": str(HERE / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    })
    env.update(extra)
    return env


def run_playbook(path: Path, *, reqlog: Path | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> tuple[float, Counter]:
    """Wall-clock seconds of `ansible-playbook path` on localhost, and the HTTP requests it sent (by verb)."""
    elapsed, verbs, _ = run_playbook_output(path, reqlog=reqlog, extra_args=extra_args, env=env)
    return elapsed, verbs


def run_playbook_output(path: Path, *, reqlog: Path | None = None, extra_args: list[str] | None = None,
                        env: dict[str, str] | None = None) -> tuple[float, Counter, str]:
    """run_playbook, and its stdout too."""
    run_env = ansible_env(**(env or {}))
    if reqlog is not None:
        reqlog.unlink(missing_ok=True)
        run_env["VELOCITY_BENCH_REQLOG"] = str(reqlog)
        run_env["PYTHONPATH"] = f"{HERE / 'reqcount'}:{run_env.get('PYTHONPATH', '')}"
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", f"ansible_python_interpreter={sys.executable}", str(path), *(extra_args or [])]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=run_env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode:
        raise RuntimeError(f"{path.name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    verbs: Counter = Counter()
    if reqlog is not None and reqlog.exists():
        verbs.update(line.split(" ", 1)[0] for line in reqlog.read_text().splitlines())
    return elapsed, verbs, proc.stdout


def run_playbook_timed(path: Path, *, reqlog: Path | None = None, extra_args: list[str] | None = None,
                       env: dict[str, str] | None = None) -> tuple[float, float, Counter]:
    """Wall seconds of the whole run, seconds its tasks took (the ansible.posix.json callback's
    start and end of each task, summed), and the HTTP requests it sent (by verb)."""
    timed_env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", **(env or {})}
    elapsed, verbs, out = run_playbook_output(path, reqlog=reqlog, extra_args=extra_args, env=timed_env)
    return elapsed, task_seconds(out), verbs


def task_seconds(json_output: str) -> float:
    """The summed task durations of an ansible.posix.json report (0 for a play without tasks)."""
    from datetime import datetime

    def ts(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    report, _ = json.JSONDecoder().raw_decode(json_output[json_output.index("{"):])
    return sum((ts(t["task"]["duration"]["end"]) - ts(t["task"]["duration"]["start"])).total_seconds()
               for play in report["plays"] for t in play["tasks"])
