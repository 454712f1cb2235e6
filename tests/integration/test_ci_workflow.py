"""The hosted workflow, checked on this machine: act's plan of every job, the CodeQL CLI's exit codes
through scripts/codeql-gate (a stub `codeql` exits with each documented code), and the output checks
that stand in, under act, for the forge's upload steps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
JOBS = {"lint", "sanity", "tests", "molecule", "bandit", "codeql", "container"}


def act(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "act"), *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


@pytest.mark.parametrize("event", ["pull_request", "push"])
def test_act_plans_every_job_for_the_event(event):
    validated = act("--validate", "--strict")
    assert validated.returncode == 0, validated.stderr[-2000:]
    listed = act("-l", event)
    assert listed.returncode == 0, listed.stderr[-2000:]
    planned = {line.split()[1] for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert planned == JOBS


def test_every_forge_only_action_is_skipped_under_act_and_stood_in_for():
    flow = yaml.safe_load(WORKFLOW.read_text())
    stood_in = set(re.findall(r"\b([\w-]+/[\w.-]+@v\d+)", (ROOT / "scripts" / "act").read_text()))
    for name, job in flow["jobs"].items():
        for step in job["steps"]:
            uses = step.get("uses")
            if not uses or uses.startswith("actions/checkout@"):
                continue
            assert "!env.ACT" in str(step.get("if", "")), f"{name}: {uses} runs under act"
            repo, ref = uses.split("@")
            owner_repo = "/".join(repo.split("/")[:2])
            assert f"{owner_repo}@{ref}" in stood_in, f"{name}: {uses} has no local stand-in in scripts/act"
            sub = repo.split("/")[2:]
            assert (ROOT / "hack" / "act" / "forge-only" / Path(*sub) / "action.yml").is_file(), uses


STUB = """#!/usr/bin/env bash
# Stand-in CodeQL CLI: exits with $STUB_FINALIZE / $STUB_ANALYZE; analyze writes a SARIF with $STUB_LEVEL results.
case "$2" in
  finalize) exit "${STUB_FINALIZE:-0}" ;;
  analyze)
    for a in "$@"; do case "$a" in --output=*) out=${a#--output=} ;; esac; done
    [ "${STUB_ANALYZE:-0}" = 0 ] && cat > "$out" <<JSON
{"version": "2.1.0", "\\$schema": "https://json.schemastore.org/sarif-2.1.0.json",
 "runs": [{"tool": {"driver": {"name": "CodeQL"}},
           "results": [{"ruleId": "py/sql-injection", "level": "${STUB_LEVEL:-note}", "message": {"text": "stub"}}]}]}
JSON
    exit "${STUB_ANALYZE:-0}" ;;
esac
exit 2
"""


@pytest.fixture
def stub_codeql(tmp_path):
    stub = tmp_path / "codeql"
    stub.write_text(STUB)
    stub.chmod(0o755)
    return stub


def gate(stub, tmp_path, **env):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "codeql-gate"), "--codeql", str(stub),
                           "--db", str(tmp_path / "db"), "--sarif", str(tmp_path / "out" / "python.sarif")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def test_codeql_gate_passes_a_clean_analysis(stub_codeql, tmp_path):
    ok = gate(stub_codeql, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 error-level result(s)" in ok.stdout


@pytest.mark.parametrize(("step", "code", "words"), [
    ("FINALIZE", 32, "found no code to analyze"),
    ("FINALIZE", 2, "something went wrong"),
    ("ANALYZE", 1, "answered 'no'"),
    ("ANALYZE", 2, "something went wrong"),
    ("ANALYZE", 3, "could not find the CodeQL installation"),
    ("ANALYZE", 33, "timed out"),
    ("ANALYZE", 98, "cancelled"),
    ("ANALYZE", 99, "ran out of memory"),
    ("ANALYZE", 100, "fatal internal error"),
    ("ANALYZE", 137, "killed by the kernel"),
])
def test_codeql_gate_fails_the_job_on_every_documented_error_code(stub_codeql, tmp_path, step, code, words):
    failed = gate(stub_codeql, tmp_path, **{f"STUB_{step}": str(code)})
    assert failed.returncode == 1
    assert f"exited {code}: " in failed.stdout and words in failed.stdout


def test_codeql_gate_fails_on_an_error_level_result(stub_codeql, tmp_path):
    failed = gate(stub_codeql, tmp_path, STUB_LEVEL="error")
    assert failed.returncode == 1 and "::error::py/sql-injection" in failed.stdout


def test_ci_check_accepts_bandits_sarif_and_refuses_other_json(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    report = tmp_path / "bandit.sarif"
    subprocess.run([str(Path(sys.executable).parent / "bandit"), "-q", "-r", str(src), "-f", "sarif", "-o",
                    str(report)], capture_output=True, timeout=120)
    ok = subprocess.run([sys.executable, str(ROOT / "scripts" / "ci-check"), "sarif", str(report)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "SARIF 2.1.0" in ok.stdout and "Bandit" in ok.stdout
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"version": "1.0"}))
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "ci-check"), "sarif", str(other)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "not SARIF 2.1.0" in bad.stderr


def test_build_cache_keys_cover_every_pinned_go_module():
    """A job that caches the Go builds (.cache/velocity with ~/go/pkg/mod) must key on every go.sum and
    go.mod under hack/: a bumped kubelet, containerd, kwok or Jaeger pin must not reuse an old build."""
    import glob

    flow = yaml.safe_load(WORKFLOW.read_text())
    pinned = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("hack/**/go.*") if p.name in {"go.sum", "go.mod"})
    assert pinned, "no go.sum under hack/"
    checked = 0
    for name, job in flow["jobs"].items():
        for step in job["steps"]:
            if not str(step.get("uses", "")).startswith("actions/cache@") or "go/pkg/mod" not in str(step["with"]["path"]):
                continue
            patterns = re.findall(r"'([^']+)'", step["with"]["key"])
            covered = {f for pat in patterns for f in glob.glob(pat, root_dir=ROOT, recursive=True)}
            assert set(pinned) <= covered, f"{name}: cache key misses {sorted(set(pinned) - covered)}"
            checked += 1
    assert checked >= 2, "no Go build cache step found"


# --- scripts/workflow-evidence: the kept O-1 evidence says what act's log says ---

def _evidence_module():
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("workflow_evidence", str(ROOT / "scripts" / "workflow-evidence"))
    spec = importlib.util.spec_from_loader("workflow_evidence", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("workflow_evidence", module)  # dataclasses look their module up there
    loader.exec_module(sys.modules["workflow_evidence"])
    return sys.modules["workflow_evidence"]


def _act_log(fail: str = "", forge_step_in: str = "", drop: str = "") -> str:
    """An act log of every job of ci.yml in act's format (matrix jobs named with act's -N suffix, names padded)."""
    ev = _evidence_module()
    flow = yaml.safe_load(WORKFLOW.read_text())
    lines = []
    for index, (name, job) in enumerate(ev.expected_jobs(flow).items()):
        if name == drop:
            continue
        shown = f"{name}-{index}" if name.startswith("Molecule") else name.ljust(40)
        steps = [ev.step_label(s) for s in job["steps"] if ev.step_label(s) not in ev.forge_only(job)]
        if name == forge_step_in:
            steps += ev.forge_only(job)[:1]
        lines.append(f"[CI/{shown}] 🚀  Start image=-self-hosted")
        for step in steps:
            lines.append(f"[CI/{shown}] ⭐ Run Main {step}")
            lines.append(f"[CI/{shown}]   | some output of {step}")
            word, mark = ("Failure", "❌") if name == fail and step == steps[-1] else ("Success", "✅")
            lines.append(f"[CI/{shown}]   {mark}  {word} - Main {step} [1.5s]")
        lines.append(f"[CI/{shown}] 🏁  Job {'failed' if name == fail else 'succeeded'}")
    return "\n".join(lines) + "\n"


def _evidence(tmp_path, **logs) -> tuple[subprocess.CompletedProcess, str]:
    paths = []
    for event, text in logs.items():
        path = tmp_path / f"{event}.log"
        path.write_text(text)
        paths.append(f"{event}={path}")
    out = tmp_path / "workflow-run.md"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "workflow-evidence"), "--out", str(out),
                          "--commit", "0" * 40, *paths], capture_output=True, text=True, timeout=120)
    return run, out.read_text() if out.exists() else ""


def test_workflow_evidence_of_a_green_run_lists_every_job_and_the_skipped_forge_steps(tmp_path):
    run, summary = _evidence(tmp_path, pull_request=_act_log(), push=_act_log())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verdict: **every job of every event succeeded; no forge-only step ran**" in summary
    assert f"commit: `{'0' * 40}`" in summary
    for scenario in ("vault_secrets", "base_image", "image", "deploy", "rollback"):
        assert f"| Molecule {scenario} | succeeded |" in summary
    assert "`actions/upload-artifact@v4`" in summary  # forge-only, listed as skipped
    assert summary.count("| succeeded |") == 2 * 11  # 6 jobs + 5 matrix jobs, per event


@pytest.mark.parametrize("case", ["failed job", "forge-only step ran", "job never ran"])
def test_workflow_evidence_refuses_a_run_that_is_not_green(tmp_path, case):
    bad = {"failed job": _act_log(fail="Molecule deploy"),
           "forge-only step ran": _act_log(forge_step_in="Bandit (SARIF)"),
           "job never ran": _act_log(drop="CodeQL (Python)")}[case]
    run, summary = _evidence(tmp_path, pull_request=_act_log(), push=bad)
    assert run.returncode == 1
    assert "NOT GREEN" in summary
    expected = {"failed job": "push: job 'Molecule deploy' failed",
                "forge-only step ran": "push: job 'Bandit (SARIF)' ran forge-only step(s)",
                "job never ran": "push: job 'CodeQL (Python)' never ran"}[case]
    assert expected in summary and expected in run.stdout
    assert not [line for line in summary.splitlines() if line.startswith("- pull_request:")]  # that one was green


def test_workflow_evidence_reads_a_real_act_run_of_a_job(tmp_path):
    """act really runs the Bandit job here (host runner); its log, read as the evidence reads it, shows the
    job's steps, its success, and none of its forge-only steps (act runs only their stand-ins' empty Pre phase)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = act("pull_request", "-j", "bandit", "--artifact-server-port", str(port))
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    ev = _evidence_module()
    flow = yaml.safe_load(WORKFLOW.read_text())
    expected = ev.expected_jobs(flow)
    jobs = ev.parse(run.stdout + run.stderr, set(expected))
    assert set(jobs) == {"Bandit (SARIF)"}
    bandit = jobs["Bandit (SARIF)"]
    assert bandit.state == "succeeded" and bandit.failed_steps == []
    assert "Bandit, failing on medium or high findings" in bandit.steps
    assert "(local run) the SARIF the forge would upload parses as SARIF 2.1.0" in bandit.steps
    forge = ev.forge_only(expected["Bandit (SARIF)"])
    assert "actions/upload-artifact@v4" in forge and not set(forge) & set(bandit.steps)
