"""Run one module of the collection the way a playbook does, and return its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_module(tmp_path: Path, module: str, args: dict, env: dict | None = None, verbosity: int = 0) -> tuple[dict, str]:
    """(result, full ansible output) of `module` with `args`; failures are results too."""
    (tmp_path / "args.json").write_text(json.dumps(args))
    out = tmp_path / "result.json"
    book = tmp_path / "run.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - {module}: \"{{{{ lookup('file', '{tmp_path}/args.json') | from_json }}}}\"\n"
        "      register: result\n      ignore_errors: true\n"
        f"    - ansible.builtin.copy:\n        content: '{{{{ result | to_json }}}}'\n        dest: {out}\n"
        "        mode: '0600'\n"
    )
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(book)] + (["-" + "v" * verbosity] if verbosity else [])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **(env or {})})
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout + proc.stderr
