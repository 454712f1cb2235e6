"""Every Molecule scenario's verify.yml only looks: what acts belongs in converge or side_effect.

Read statically (no Molecule run): each task of each verify play, in blocks, rescues and always sections
too, uses a module that reads, or runs a command that is marked `changed_when: false` and names no verb
that changes something. A scenario with a side_effect.yml runs it (its test_sequence lists side_effect, before
verify when verify checks its outcome, after it when it acts on what verify looked at).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent for p in (ROOT / "molecule").glob("*/molecule.yml"))

READ_ONLY_MODULES = {
    "ansible.builtin.assert", "ansible.builtin.set_fact", "ansible.builtin.stat", "ansible.builtin.slurp",
    "ansible.builtin.debug", "ansible.builtin.fail", "ansible.builtin.uri",
    "kubernetes.core.k8s_info", "velocity.platform.k8s_read", "community.docker.docker_image_info", "community.docker.docker_container_info",
}
COMMAND_MODULES = {"ansible.builtin.command", "ansible.builtin.shell"}
# Task files of our roles that compute values without acting, which a verify play may include.
READ_ONLY_ROLE_TASKS = {("velocity.platform.base_image", "reference.yml")}
# Words in a command line that mean it changes something.
ACTING = re.compile(r"\b(apply|create|delete|patch|replace|scale|rollout\s+undo|annotate|label|push|build|tag|rmi|"
                    r"kill|stop|INSERT|UPDATE|DELETE|DROP|ALTER|GRANT|REVOKE)\b(?!=)")
TASK_KEYS = {"name", "register", "changed_when", "failed_when", "when", "vars", "loop", "loop_control", "until",
             "retries", "delay", "no_log", "check_mode", "tags", "ignore_errors", "block", "rescue", "always",
             "environment", "delegate_to", "args", "become", "notify", "run_once", "timeout", "diff"}


def tasks_of(play: dict):
    def walk(tasks):
        for task in tasks or []:
            yield task
            for section in ("block", "rescue", "always"):
                yield from walk(task.get(section))
    for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
        yield from walk(play.get(key))


def module_of(task: dict) -> str | None:
    if any(s in task for s in ("block", "rescue", "always")):
        return None
    (module,) = [k for k in task if k not in TASK_KEYS]
    return module


def acting(task: dict) -> str | None:
    """Why the task may change something, or None when it only reads."""
    module = module_of(task)
    if module is None or module in READ_ONLY_MODULES:
        if module == "ansible.builtin.uri" and str(task[module].get("method", "GET")).upper() != "GET":
            return f"uri with method {task[module]['method']}"
        return None
    if module == "ansible.builtin.include_role":
        args = task[module]
        if (args.get("name"), args.get("tasks_from")) in READ_ONLY_ROLE_TASKS:
            return None
        return f"includes role {args.get('name')} ({args.get('tasks_from', 'main.yml')})"
    if module in COMMAND_MODULES:
        if task.get("changed_when") is not False:
            return f"{module} without changed_when: false"
        args = task[module]
        line = " ".join(map(str, args.get("argv", []))) if isinstance(args, dict) and "argv" in args else \
            str(args.get("cmd", "") if isinstance(args, dict) else args)
        found = ACTING.search(line)
        return f"command {line!r} says {found.group(0)!r}" if found else None
    return f"module {module}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_verify_only_reads(scenario):
    verify = scenario / "verify.yml"
    assert verify.is_file(), f"{scenario.name} has no verify.yml"
    problems = [f"{verify.relative_to(ROOT)}: task {task.get('name')!r}: {why}"
                for play in yaml.safe_load(verify.read_text()) for task in tasks_of(play)
                if (why := acting(task))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if (s / "side_effect.yml").is_file()], ids=lambda p: p.name)
def test_side_effect_runs(scenario):
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    sequence = (config.get("scenario") or {}).get("test_sequence")
    assert sequence is None or "side_effect" in sequence, f"{scenario.name}: side_effect.yml is never run"


def test_the_check_catches_an_acting_verify():
    # The same rules on tasks that act: each must be reported.
    assert acting({"name": "x", "ansible.builtin.include_role": {"name": "velocity.platform.deploy"}})
    assert acting({"name": "x", "kubernetes.core.k8s": {"state": "present"}})
    assert acting({"name": "x", "ansible.builtin.command": {"argv": ["kubectl", "get", "pods"]}})  # no changed_when
    assert acting({"name": "x", "ansible.builtin.command": {"argv": ["kubectl", "delete", "pod", "p"]},
                   "changed_when": False})
    assert acting({"name": "x", "ansible.builtin.uri": {"url": "http://x", "method": "POST"}})
    assert not acting({"name": "x", "ansible.builtin.command": {"argv": ["kubectl", "get", "--raw", "/readyz"]},
                       "changed_when": False})
