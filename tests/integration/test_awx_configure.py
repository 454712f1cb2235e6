"""awx/configure.yml without an AWX server: its arguments, and the jobs it defines run as AWX runs them.

1. Every awx.awx task of configure.yml runs for real against a controller address where nothing
   listens, under a strategy that keeps going after a failure. The installed awx.awx module
   validates its arguments against its own argument spec before it sends anything, so each task
   must fail with the connection error and never with an argument error. The arguments the modules
   received (their `invocation`) are what the rest of this file uses: the job templates' playbooks,
   extra vars and credentials, the credential types' injectors, the inventory source and the
   workflow's nodes and edges, exactly as configure.yml computed them.
2. The Kubernetes credential is consumed: the env that its credential type injects (a ServiceAccount
   token from the TokenRequest API, bound to one namespace) lets manifest_apply work there, is
   refused elsewhere, and the token appears nowhere in the output.
3. The release workflow, simulated from its definition: ansible-runner runs each node's playbook on a
   fresh private data dir (project copy, inventory from the source path, env/extravars = the job
   template's extra vars + the node's extra data + the artifacts of earlier nodes (set_stats),
   env/envvars = the credentials' injected env), follows the success/failure edges, against the real
   Vault, PostgreSQL, Docker, registry and cluster. Files pass between jobs only through the artifact
   directory the job templates name. A second run whose deploy fails takes the rollback node.
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "https://127.0.0.1:9"  # discard port: nothing listens, the modules fail after validating their arguments
DUMMY_ENV = {
    "CONTROLLER_HOST": NOWHERE,
    "CONTROLLER_OAUTH_TOKEN": "dummy-token",
    "CONTROLLER_VERIFY_SSL": "false",
    "VELOCITY_AWX_VAULT_ADDR": "https://vault.example.invalid:8200",
    "VELOCITY_AWX_VAULT_ROLE_ID": "dummy-role-id",
    "VELOCITY_AWX_VAULT_SECRET_ID": "dummy-secret-id",
    "VELOCITY_AWX_K8S_HOST": "https://k8s.example.invalid:6443",
    "VELOCITY_AWX_K8S_TOKEN": "dummy-k8s-token",
    "VELOCITY_AWX_REGISTRY_USERNAME": "dummy-user",
    "VELOCITY_AWX_REGISTRY_PASSWORD": "dummy-password",
}
KEEP_GOING = '''
from __future__ import annotations

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy


class StrategyModule(LinearStrategy):
    """linear, but an awx.awx task that fails does not end the play (no controller here)."""

    def _queue_task(self, host, task, task_vars, play_context):
        if task.action.startswith("awx.awx."):
            task.ignore_errors = True
        return super()._queue_task(host, task, task_vars, play_context)
'''
ARGUMENT_ERRORS = ("Unsupported parameters", "is of type", "value of", "missing required", "mutually exclusive",
                   "is required", "unable to convert", "must be one of", "parameters are required together")


def _run_configure(tmp: Path, extravars: dict) -> list[dict]:
    """configure.yml under ansible-runner; returns one record per awx.awx module invocation."""
    import ansible_runner

    (tmp / "strategy").mkdir(parents=True)
    (tmp / "strategy" / "keep_going.py").write_text(KEEP_GOING)
    pdd = tmp / "pdd"
    (pdd / "env").mkdir(parents=True)
    (pdd / "env" / "extravars").write_text(yaml.safe_dump({"awx_configure_no_log": False, **extravars}))
    env = {**DUMMY_ENV, "ANSIBLE_STRATEGY_PLUGINS": str(tmp / "strategy"), "ANSIBLE_STRATEGY": "keep_going",
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    result = ansible_runner.run(private_data_dir=str(pdd), playbook=str(ROOT / "awx" / "configure.yml"),
                                envvars=env, quiet=True, project_dir=str(ROOT / "awx"))
    events = list(result.events)
    stdout = "".join(e.get("stdout", "") for e in events)
    assert result.status == "successful", stdout[-4000:]
    calls = []
    for e in events:
        if e["event"] not in ("runner_on_ok", "runner_on_failed", "runner_item_on_ok", "runner_item_on_failed"):
            continue
        data = e["event_data"]
        if not data.get("task_action", "").startswith("awx.awx.") or data["res"].get("results"):
            continue
        calls.append({"task": data["task"], "action": data["task_action"], "res": data["res"]})
    return calls


@pytest.fixture(scope="module")
def configure_calls(tmp_path_factory):
    """The awx.awx invocations of configure.yml, with the artifact dir and the inventory of this test."""
    tmp = tmp_path_factory.mktemp("awx-configure")
    shared = tmp / "shared"  # stands for the volume the container group mounts at /var/lib/velocity
    calls = _run_configure(tmp, {"awx_artifact_dir": str(shared), "awx_inventory_source_path": "inventory/local"})
    return {"calls": calls, "shared": shared}


def _args(calls: list[dict], action: str) -> list[dict]:
    return [c["res"]["invocation"]["module_args"] for c in calls if c["action"] == f"awx.awx.{action}"]


def test_every_awx_module_call_passes_its_own_argument_spec(configure_calls):
    calls = configure_calls["calls"]
    config = yaml.safe_load((ROOT / "awx" / "templates.yml").read_text())
    expected = {"organization": 1, "credential_type": len(config["credential_types"]),
                "credential": len(config["credentials"]), "execution_environment": 1, "instance_group": 1,
                "project": 1, "inventory": 1, "inventory_source": 1, "job_template": len(config["job_templates"]),
                "workflow_job_template": 1, "schedule": len(config["schedules"])}
    seen: dict[str, int] = {}
    for call in calls:
        msg = call["res"].get("msg", "")
        # Validation comes first in AnsibleModule: reaching the controller means the arguments were accepted.
        assert "trying to connect to https://127.0.0.1:9/" in msg, f"{call['task']}: {msg}"
        assert not any(err in msg for err in ARGUMENT_ERRORS), f"{call['task']}: {msg}"
        assert "invocation" in call["res"], call["task"]
        short = call["action"].removeprefix("awx.awx.")
        seen[short] = seen.get(short, 0) + 1
    assert seen == expected


def test_a_wrong_argument_is_caught_by_the_same_check(tmp_path):
    """The check can fail: a templates.yml with an argument the module does not accept is reported."""
    awx = tmp_path / "awx"
    shutil.copytree(ROOT / "awx", awx)
    config = yaml.safe_load((awx / "templates.yml").read_text())
    config["execution_environment"]["pull"] = "sometimes"  # not one of always/missing/never
    (awx / "templates.yml").write_text(yaml.safe_dump(config))
    import ansible_runner

    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "keep_going.py").write_text(KEEP_GOING)
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    result = ansible_runner.run(private_data_dir=str(pdd), playbook=str(awx / "configure.yml"), quiet=True,
                                envvars={**DUMMY_ENV, "ANSIBLE_STRATEGY_PLUGINS": str(tmp_path / "strategy"),
                                         "ANSIBLE_STRATEGY": "keep_going", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
                                extravars={"awx_configure_no_log": False}, project_dir=str(awx))
    msgs = [e["event_data"]["res"].get("msg", "") for e in result.events
            if e["event"] == "runner_on_failed" and e["event_data"].get("task_action") == "awx.awx.execution_environment"]
    assert msgs and "value of pull must be one of" in msgs[0], msgs


def test_credential_values_come_from_the_environment_and_are_hidden(tmp_path):
    """With the default no_log, no credential value reaches any event; a missing one stops before any change."""
    import ansible_runner

    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "keep_going.py").write_text(KEEP_GOING)
    env = {**DUMMY_ENV, "ANSIBLE_STRATEGY_PLUGINS": str(tmp_path / "strategy"), "ANSIBLE_STRATEGY": "keep_going",
           "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "VELOCITY_AWX_K8S_TOKEN": ""}
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    result = ansible_runner.run(private_data_dir=str(pdd), playbook=str(ROOT / "awx" / "configure.yml"),
                                quiet=True, envvars=env, project_dir=str(ROOT / "awx"))
    events = list(result.events)
    assert result.status == "failed"
    stdout = "".join(e.get("stdout", "") for e in events)
    assert "needs VELOCITY_AWX_K8S_TOKEN" in stdout
    assert not any(e["event_data"].get("task_action", "").startswith("awx.awx.") for e in events
                   if e["event"].startswith("runner_on")), "an awx.awx task ran although a credential value was missing"
    everything = json.dumps(events)
    for secret in ("dummy-secret-id", "dummy-password"):
        assert secret not in everything


# --- the Kubernetes credential, with a real ServiceAccount token ---------------------------------------------


def _render_injectors(ctype: dict, inputs: dict, files_dir: Path) -> dict[str, str]:
    """The env AWX injects for a credential: the type's file injectors written to files, then its env
    injectors rendered with Jinja over the inputs (every declared field, '' or its default when unset)."""
    from jinja2 import Environment

    jinja = Environment(autoescape=False)
    fields = {f["id"]: f.get("default", "") for f in ctype["inputs"]["fields"]}
    context = {**fields, **inputs}
    filenames = {}
    for key, template in (ctype["injectors"].get("file") or {}).items():
        name = key.split(".", 1)[1] if "." in key else "template"
        path = files_dir / f"{ctype['name'].replace(' ', '_')}-{name}"
        path.write_text(jinja.from_string(template).render(context))
        path.chmod(0o600)
        filenames[name] = str(path)
    context["tower"] = {"filename": filenames}
    rendered = {k: jinja.from_string(v).render(context) for k, v in ctype["injectors"]["env"].items()}
    return {k: v for k, v in rendered.items() if v}


@pytest.fixture(scope="module")
def sa_namespace(k8s_cluster):
    """Own namespace, a ServiceAccount with all rights in it only, and a token from the TokenRequest API."""
    from kubernetes import client

    api = k8s_cluster.api_client()
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    ns = f"awxcfg-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        core.create_namespaced_service_account(ns, {"metadata": {"name": "velocity-deployer"}})
        rbac.create_namespaced_role(ns, {"metadata": {"name": "deployer"},
                                         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
        rbac.create_namespaced_role_binding(ns, {
            "metadata": {"name": "deployer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "velocity-deployer", "namespace": ns}]})
        token = core.create_namespaced_service_account_token(
            "velocity-deployer", ns, {"spec": {"expirationSeconds": 3600}}).status.token
        kubeconfig = yaml.safe_load(Path(k8s_cluster.kubeconfig).read_text())
        cluster = kubeconfig["clusters"][0]["cluster"]
        if "certificate-authority-data" in cluster:
            ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        else:
            ca = Path(cluster["certificate-authority"]).read_text()
        yield {"namespace": ns, "token": token, "host": cluster["server"], "ca": ca}
    finally:
        core.delete_namespace(ns)
        api.close()


def _credential_env(configure_calls, key: str, inputs: dict, files_dir: Path) -> dict[str, str]:
    """The env of credential `key` of templates.yml, from the credential type configure.yml sends."""
    config = yaml.safe_load((ROOT / "awx" / "templates.yml").read_text())
    type_name = config["credentials"][key]["credential_type"]
    ctypes = {a["name"]: a for a in _args(configure_calls["calls"], "credential_type")}
    creds = {a["name"]: a for a in _args(configure_calls["calls"], "credential")}
    assert creds[config["credentials"][key]["name"]]["credential_type"] == type_name
    return _render_injectors(ctypes[type_name], inputs, files_dir)


@pytest.mark.k8s
def test_kubernetes_credential_is_consumed_by_manifest_apply(configure_calls, sa_namespace, k8s_cluster, tmp_path):
    import ansible_runner

    files = tmp_path / "cred"
    files.mkdir()
    env = _credential_env(configure_calls, "kubernetes", {"host": sa_namespace["host"], "verify_ssl": True,
                                                          "bearer_token": sa_namespace["token"],
                                                          "ssl_ca_cert": sa_namespace["ca"]}, files)
    assert set(env) == {"K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_VERIFY_SSL", "K8S_AUTH_SSL_CA_CERT"}
    playbook = tmp_path / "project" / "apply.yml"
    playbook.parent.mkdir()
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "In the credential's namespace", "velocity.platform.manifest_apply": {
            "definitions": [{**cm, "metadata": {"name": "awx-cred", "namespace": sa_namespace["namespace"]}}],
            "wait": False}},
        {"name": "Outside it", "ignore_errors": True, "register": "outside", "velocity.platform.manifest_apply": {
            "definitions": [{**cm, "metadata": {"name": "awx-cred", "namespace": "default"}}], "wait": False}},
        {"name": "Refused by RBAC", "ansible.builtin.assert": {"that": [
            "outside is failed", "'refused (HTTP 403)' in outside.msg"]}},
    ]}]))
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(env))
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts").write_text("localhost ansible_connection=local ansible_python_interpreter={{ ansible_playbook_python }}\n")
    result = ansible_runner.run(private_data_dir=str(pdd), project_dir=str(playbook.parent), playbook="apply.yml",
                                quiet=True, verbosity=3, timeout=600,
                                # No kubeconfig to fall back to: only the credential's env can connect.
                                envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "KUBECONFIG": "/nonexistent"})
    events = list(result.events)
    stdout = "".join(e.get("stdout", "") for e in events)
    assert result.status == "successful", stdout[-4000:]
    assert sa_namespace["token"] not in json.dumps(events)
    from kubernetes import client
    from kubernetes import config as kconfig

    api = kconfig.new_client_from_config(config_file=k8s_cluster.kubeconfig)
    try:
        got = client.CoreV1Api(api).read_namespaced_config_map("awx-cred", sa_namespace["namespace"])
        assert got.data == {"k": "v"}
    finally:
        api.close()

