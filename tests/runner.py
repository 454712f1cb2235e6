"""The one way tests run the collection through real ansible-playbook: a play of tasks, or one module.

`Playbook(tmp_path).run(tasks_yaml, extra_vars)` writes a localhost play and runs it with the
repository's ansible.cfg and collections; `.module(name, args)` runs one module task and
returns its registered result (a failure is a result too). Vault variables of the caller's
environment are dropped, so a test never talks to a Vault it did not name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Where the project keeps its slow builds, outside the repository (scripts/lib.sh).
CACHE_DIR = Path(os.environ.get("VELOCITY_CACHE_DIR") or Path.home() / ".cache" / "velocity")
STRAY_VAULT_ENV = ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "VAULT_NAMESPACE")


def ansible_env(extra: dict | None = None) -> dict[str, str]:
    """The environment ansible-playbook runs with in tests: this checkout's config and collections."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    for key in STRAY_VAULT_ENV:
        env.pop(key, None)
    env.update(extra or {})
    return env


class Playbook:
    """Runs plays from ``tmp_path``; its own inputs (play, vars, module args) go to ``tmp_path/runner``."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path / "runner"
        self.tmp.mkdir(mode=0o700, parents=True, exist_ok=True)

    def run(self, tasks_yaml: str, extra_vars: dict | None = None, verbosity: int = 0, env: dict | None = None,
            check: bool = False, diff: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
        tag = uuid.uuid4().hex[:6]
        play = self.tmp / f"play-{tag}.yml"
        play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(
            textwrap.dedent(tasks_yaml), "    "))
        vars_file = self.tmp / f"vars-{tag}.json"
        vars_file.write_text(json.dumps(extra_vars or {}))
        vars_file.chmod(0o600)
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play), "-e", f"@{vars_file}",
               "-e", f"ansible_python_interpreter={sys.executable}"]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        return subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), cwd=str(ROOT),
                              timeout=timeout)

    def module(self, name: str, args: dict, **kw) -> tuple[dict, subprocess.CompletedProcess]:
        """Run one module task (``name`` short, or fully qualified); return (its registered result, the process)."""
        fqcn = name if "." in name else "velocity.platform." + name
        tag = uuid.uuid4().hex[:6]
        out = self.tmp / f"result-{tag}.json"
        # The arguments come from a file through a lookup, so a value is never templated.
        args_file = self.tmp / f"args-{tag}.json"
        args_file.write_text(json.dumps(args))
        args_file.chmod(0o600)
        proc = self.run(
            f"""\
            - name: run {fqcn}
              {fqcn}: "{{{{ lookup('ansible.builtin.file', '{args_file}') | from_json }}}}"
              register: r
              ignore_errors: true
            - name: save
              ansible.builtin.copy:
                content: "{{{{ r | to_json }}}}"
                dest: {out}
                mode: "0600"
              no_log: true
              check_mode: false
            """, kw.pop("extra_vars", {}), **kw)
        if not out.exists():
            raise AssertionError(f"playbook did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
        return json.loads(out.read_text()), proc


def run_module(tmp_path: Path, module: str, args: dict, env: dict | None = None, verbosity: int = 0) -> tuple[dict, str]:
    """(result, the whole ansible output) of one module task."""
    result, proc = Playbook(tmp_path).module(module, args, env=env, verbosity=verbosity)
    return result, proc.stdout + proc.stderr
