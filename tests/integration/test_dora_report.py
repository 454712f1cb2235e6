"""dora_report as operators run it: the module in a playbook, and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "collections" / "ansible_collections" / "velocity" / "platform" / "tests" / "unit" / "plugins" / "module_utils"))
from test_dora import SERIES  # noqa: E402


def _playbook(tmp_path: Path, events: Path, output: Path, check: bool = False) -> subprocess.CompletedProcess:
    book = tmp_path / "dora.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - velocity.platform.dora_report:\n"
        f"        path: {events}\n        output_path: {output}\n      register: dora\n"
        "    - ansible.builtin.copy:\n        content: '{{ dora | to_json }}'\n"
        f"        dest: {tmp_path}/result.json\n        mode: '0600'\n      check_mode: false\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(book)] + (["--check"] if check else [])
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_module_writes_the_report_once_then_reports_no_change(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in SERIES))
    output = tmp_path / "report.json"

    dry = _playbook(tmp_path, events, output, check=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert not output.exists()

    first = _playbook(tmp_path, events, output)
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["changed"] is True and result["events"] == len(SERIES)
    assert json.loads(output.read_text())["change_failure_rate"] == 0.5

    second = _playbook(tmp_path, events, output)
    assert second.returncode == 0
    assert json.loads((tmp_path / "result.json").read_text())["changed"] is False


def test_module_fails_naming_the_bad_line(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(SERIES[0]) + "\n" + '{"type": "deploy"}\n')
    output = tmp_path / "report.json"
    proc = _playbook(tmp_path, events, output)
    assert proc.returncode != 0
    assert "line 2: missing field 'result'" in proc.stdout
    assert not output.exists()


def test_command_prints_a_table_and_json(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in SERIES))
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "dora-report"), str(events)],
                           capture_output=True, text=True, check=True).stdout
    assert "Lead time for change" in table and "70.0 min" in table
    as_json = subprocess.run([sys.executable, str(ROOT / "scripts" / "dora-report"), "--json", str(events)],
                             capture_output=True, text=True, check=True).stdout
    assert json.loads(as_json)["time_to_restore_seconds"] == 1020
    missing = subprocess.run([sys.executable, str(ROOT / "scripts" / "dora-report"), str(tmp_path / "none")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "run a deploy first" in missing.stderr


def test_module_writes_the_dashboard_and_reports_no_change_the_second_time(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in SERIES))
    html = tmp_path / "dora.html"
    book = tmp_path / "html.yml"
    book.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - velocity.platform.dora_report:\n"
        f"        path: {events}\n        html_path: {html}\n      register: dora\n"
        "    - ansible.builtin.copy:\n        content: '{{ dora | to_json }}'\n"
        f"        dest: {tmp_path}/result.json\n        mode: '0600'\n      check_mode: false\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(book)]
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads((tmp_path / "result.json").read_text())["changed"] is True
    page = html.read_text()
    assert 'data-metric="change_failure_rate" data-value="0.5"' in page and "<script>" not in page
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0
    assert json.loads((tmp_path / "result.json").read_text())["changed"] is False
