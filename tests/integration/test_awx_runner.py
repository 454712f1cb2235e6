"""The AWX job templates, run the way AWX runs a job: ansible-runner on a private data dir.

No AWX server runs here, so the test lays out what AWX would: the project checkout,
the inventory, env/extravars from the template's survey answers, and env/envvars
with what the "Velocity Vault AppRole" credential type injects.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.vault, pytest.mark.postgres, pytest.mark.slow]


def _injected_env(inputs: dict[str, str]) -> dict[str, str]:
    """Render the credential type's env injectors as AWX does (Jinja over the inputs)."""
    from jinja2 import Environment

    ctype = yaml.safe_load((ROOT / "awx" / "credential_types" / "velocity_vault_approle.yml").read_text())
    env = Environment(autoescape=False)
    # AWX renders every declared input; an optional one left empty is "".
    fields = {f["id"]: "" for f in ctype["inputs"]["fields"]}
    context = {**fields, **inputs, "tower": {"filename": {}}}
    rendered = {k: env.from_string(v).render(context) for k, v in ctype["injectors"]["env"].items()}
    return {k: v for k, v in rendered.items() if v}


def _survey_answers(template: str, answers: dict) -> dict:
    """What AWX puts in extra vars: the answered questions only, checked against the survey."""
    survey = json.loads((ROOT / "awx" / "surveys" / f"{template}.json").read_text())
    questions = {q["variable"]: q for q in survey["spec"]}
    for variable, value in answers.items():
        assert variable in questions, f"{variable} is not a question of {template}"
        if questions[variable]["type"] == "multiplechoice":
            assert str(value) in questions[variable]["choices"]
    assert not any("default" in q for q in questions.values()), "a survey default would override the inventory"
    return dict(answers)


def test_surveys_are_derived_from_the_argument_specs():
    proc = subprocess.run([sys.executable, str(ROOT / "awx" / "surveys.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_secrets_job_template_runs_under_ansible_runner_without_leaking(tmp_path, vault):
    import ansible_runner

    pdd = tmp_path / "job"
    shutil.copytree(ROOT, pdd / "project", symlinks=True,
                    ignore=shutil.ignore_patterns(".git", "app", "hack", "out", "dist", "molecule", "tests", "benchmarks", "__pycache__"))
    shutil.copytree(ROOT / "inventory" / "local", pdd / "inventory")
    state = tmp_path / "state"  # no local AppRole files here: the job must use the injected credential
    extravars = {**_survey_answers("velocity-secrets", {"vault_secrets_auth_method": "approle"}),
                 "velocity_state_dir": str(state)}
    (pdd / "env").mkdir()
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    envvars = _injected_env({"vault_addr": vault.addr, "role_id": vault.role_id, "secret_id": vault.secret_id})
    assert {"VAULT_ADDR", "VAULT_ROLE_ID", "VAULT_SECRET_ID"} <= set(envvars)
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))

    result = ansible_runner.run(private_data_dir=str(pdd), playbook="playbooks/secrets.yml", quiet=True,
                                envvars={"ANSIBLE_CONFIG": str(pdd / "project" / "ansible.cfg")})
    events = list(result.events)
    stdout = "".join(e.get("stdout", "") for e in events)
    assert result.status == "successful" and result.rc == 0, stdout[-4000:]
    plays = [e["event_data"].get("play") for e in events if e["event"] == "playbook_on_play_start"]
    assert plays == ["Secrets from Vault"]
    assert "[velocity] stage Secrets from Vault" in stdout

    env_file = state / "secrets" / "app.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    secret_values = [line.split("=", 1)[1] for line in env_file.read_text().splitlines() if "=" in line]
    everything = json.dumps(events)
    for secret in [vault.secret_id, *secret_values]:
        assert secret not in everything
