"""Helpers to run the collection's modules and roles through real ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


class Playbook:
    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path

    def run(self, tasks_yaml: str, extra_vars: dict | None = None, verbosity: int = 0, env: dict | None = None,
            check: bool = False, diff: bool = False) -> subprocess.CompletedProcess:
        play = self.tmp / "play.yml"
        play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(
            textwrap.dedent(tasks_yaml), "    "))
        vars_file = self.tmp / "vars.json"
        vars_file.write_text(json.dumps(extra_vars or {}))
        cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play), "-e", f"@{vars_file}",
               "-e", f"ansible_python_interpreter={sys.executable}"]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        full_env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                    "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        for key in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "VAULT_NAMESPACE"):
            full_env.pop(key, None)
        full_env.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=str(ROOT), timeout=300)

    def module(self, name: str, args: dict, **kw) -> tuple[dict, subprocess.CompletedProcess]:
        """Run one module task; return (its registered result, the process)."""
        out = self.tmp / "result.json"
        proc = self.run(
            f"""\
            - name: run {name}
              velocity.platform.{name}: "{{{{ module_args }}}}"
              register: r
              ignore_errors: true
            - name: save
              ansible.builtin.copy:
                content: "{{{{ r | to_json }}}}"
                dest: {out}
                mode: "0600"
              no_log: true
              check_mode: false
            """, dict(kw.pop("extra_vars", {}), module_args=args), **kw)
        if not out.exists():
            raise AssertionError(f"playbook did not run:\n{proc.stdout}\n{proc.stderr}")
        return json.loads(out.read_text()), proc


@pytest.fixture
def playbook(tmp_path: Path) -> Playbook:
    return Playbook(tmp_path)
