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
import itertools
import json
import os
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
ONLY_EXECUTION_ENVIRONMENT = '''
_KEEP_GOING = StrategyModule


class StrategyModule(_KEEP_GOING):
    """keep_going, and every awx.awx task but execution_environment is skipped."""

    def _queue_task(self, host, task, task_vars, play_context):
        if task.action.startswith("awx.awx.") and task.action != "awx.awx.execution_environment":
            task.when = [False]
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


def test_every_job_template_runs_a_playbook_of_the_project(configure_calls):
    """The playbooks the job templates name exist in the repository (AWX lists the project's playbooks)."""
    playbooks = [a["playbook"] for a in _args(configure_calls["calls"], "job_template")]
    assert "playbooks/renew.yml" in playbooks  # the lease renewal the schedule runs
    missing = [p for p in playbooks if not (ROOT / p).is_file()]
    assert not missing, f"job templates name playbooks that are not in the project: {missing}"
    (schedule,) = _args(configure_calls["calls"], "schedule")
    renew = next(a for a in _args(configure_calls["calls"], "job_template") if a["name"] == schedule["unified_job_template"])
    assert renew["playbook"] == "playbooks/renew.yml"
    assert "RRULE:FREQ=MINUTELY" in schedule["rrule"]


def test_a_wrong_argument_is_caught_by_the_same_check(tmp_path):
    """The check can fail: a templates.yml with an argument the module does not accept is reported."""
    awx = tmp_path / "awx"
    shutil.copytree(ROOT / "awx", awx)
    config = yaml.safe_load((awx / "templates.yml").read_text())
    config["execution_environment"]["pull"] = "sometimes"  # not one of always/missing/never
    (awx / "templates.yml").write_text(yaml.safe_dump(config))
    import ansible_runner

    (tmp_path / "strategy").mkdir()
    # Only the task given the wrong argument runs among the awx.awx ones: each of the others would only fail on
    # the connection (about 1 CPU s apiece), as in the test above.
    (tmp_path / "strategy" / "keep_going.py").write_text(KEEP_GOING + ONLY_EXECUTION_ENVIRONMENT)
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    result = ansible_runner.run(private_data_dir=str(pdd), playbook=str(awx / "configure.yml"), quiet=True,
                                envvars={**DUMMY_ENV, "ANSIBLE_STRATEGY_PLUGINS": str(tmp_path / "strategy"),
                                         "ANSIBLE_STRATEGY": "keep_going", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
                                extravars={"awx_configure_no_log": False}, project_dir=str(awx))
    msgs = [e["event_data"]["res"].get("msg", "") for e in result.events
            if e["event"] == "runner_on_failed" and e["event_data"].get("task_action") == "awx.awx.execution_environment"]
    assert msgs and "value of pull must be one of" in msgs[0], msgs
    ran = {e["event_data"].get("task_action") for e in result.events if e["event"] in ("runner_on_failed", "runner_on_ok")}
    assert {action for action in ran if action.startswith("awx.awx.")} == {"awx.awx.execution_environment"}, ran


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



# --- the release workflow, job by job --------------------------------------------------------------------------


def _simulate_workflow(nodes: list[dict], run_job) -> list[tuple[str, bool]]:
    """What AWX's workflow engine does with these nodes: start at the nodes no edge points to, run a node's
    success (or failure) children after it, pass the artifacts of earlier nodes on. Returns [(node, ok)]."""
    by_id = {n["identifier"]: n for n in nodes}
    edges = ("success_nodes", "failure_nodes", "always_nodes")
    children = {c["identifier"] for n in nodes for e in edges for c in n["related"].get(e, [])}
    queue = [i for i in by_id if i not in children]
    ran: list[tuple[str, bool]] = []
    artifacts: dict = {}
    while queue:
        ident = queue.pop(0)
        ok, produced = run_job(by_id[ident], dict(artifacts))
        ran.append((ident, ok))
        artifacts.update(produced)
        related = by_id[ident]["related"]
        for child in related.get("success_nodes" if ok else "failure_nodes", []) + related.get("always_nodes", []):
            if child["identifier"] not in queue and child["identifier"] not in dict(ran):
                queue.append(child["identifier"])
    return ran


@pytest.fixture(scope="module")
def project_sync(tmp_path_factory):
    """The project as AWX syncs it: a clone of the committed repository (no working-tree leftovers)."""
    import subprocess

    dest = tmp_path_factory.mktemp("awx-project") / "project"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(dest)], check=True, timeout=120)
    return dest


@pytest.mark.slow
@pytest.mark.vault
@pytest.mark.postgres
@pytest.mark.docker
@pytest.mark.k8s
def test_release_workflow_runs_job_by_job_and_rolls_back_a_failed_deploy(
        configure_calls, sa_namespace, project_sync, vault, registry, docker_engine, k8s_cluster, tmp_path):
    import ansible_runner
    from kubernetes import client
    from kubernetes import config as kconfig

    calls = configure_calls["calls"]
    shared = configure_calls["shared"]
    templates = {a["name"]: a for a in _args(calls, "job_template")}
    (workflow,) = _args(calls, "workflow_job_template")
    (source,) = _args(calls, "inventory_source")
    (inventory,) = _args(calls, "inventory")
    credentials = {a["name"]: a for a in _args(calls, "credential")}
    config = yaml.safe_load((ROOT / "awx" / "templates.yml").read_text())
    key_of = {c["name"]: k for k, c in config["credentials"].items()}
    real_inputs = {
        "vault": {"vault_addr": vault.addr, "role_id": vault.role_id, "secret_id": vault.secret_id},
        "kubernetes": {"host": sa_namespace["host"], "bearer_token": sa_namespace["token"], "verify_ssl": True,
                       "ssl_ca_cert": sa_namespace["ca"]},
        "registry": {"username": registry.username, "password": registry.password},
    }
    ns = sa_namespace["namespace"]
    # This environment's inventory: the source path configure.yml was given (inventory/local), plus the
    # test's own namespace (the ServiceAccount may act there only) and one replica. The image's smoke test
    # (tests/integration/image, test_pipeline) is off: its 5 s container health check is not what this tests,
    # and it times out when the shared machine is loaded.
    environment = {"deploy_namespace": ns, "deploy_create_namespace": False, "deploy_replicas": 1,
                   "image_smoke_test_enabled": False}
    jobs: list[dict] = []
    job_ids = itertools.count()

    def run_job(node: dict, artifacts: dict, overlay: dict) -> tuple[bool, dict]:
        jt = templates[node["unified_job_template"]["name"]]
        survey = {q["variable"] for q in (jt.get("survey_spec") or {}).get("spec", [])}
        assert set(node.get("extra_data") or {}) <= survey, "AWX drops node extra data that is not a survey question"
        pdd = tmp_path / f"job-{next(job_ids)}-{node['identifier']}"  # fresh private data dir per job
        shutil.copytree(project_sync, pdd / "project", symlinks=True)
        shutil.copytree(project_sync / source["source_path"], pdd / "inventory")  # the source syncs from the project
        (pdd / "inventory" / "group_vars" / "all" / "zz-environment.yml").write_text(
            yaml.safe_dump({**environment, **overlay}))
        (pdd / "inventory" / "awx-inventory-variables.yml").write_text(
            yaml.safe_dump({"all": {"vars": inventory.get("variables") or {}}}))
        (pdd / "env").mkdir()
        (pdd / "credentials").mkdir()
        extravars = {**jt["extra_vars"], **artifacts, **(node.get("extra_data") or {})}
        (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
        envvars: dict[str, str] = {}
        for name in jt["credentials"]:
            ctype_name = credentials[name]["credential_type"]
            ctype = next(a for a in _args(calls, "credential_type") if a["name"] == ctype_name)
            envvars.update(_render_injectors(ctype, real_inputs[key_of[name]], pdd / "credentials"))
        (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
        result = ansible_runner.run(private_data_dir=str(pdd), playbook=jt["playbook"], quiet=True, timeout=1200,
                                    envvars={"ANSIBLE_CONFIG": str(pdd / "project" / "ansible.cfg")})
        events = list(result.events)
        stats = next((e["event_data"] for e in events if e["event"] == "playbook_on_stats"), {})
        jobs.append({"node": node["identifier"], "status": result.status, "pdd": pdd, "extravars": extravars,
                     "stdout": "".join(e.get("stdout", "") for e in events), "events": events})
        return result.status == "successful", stats.get("artifact_data") or {}

    api = kconfig.new_client_from_config(config_file=k8s_cluster.kubeconfig)
    apps = client.AppsV1Api(api)
    try:
        with pytest.MonkeyPatch.context() as mp:
            # An AWX job has only what its credentials inject: no kubeconfig, no Vault token of this shell.
            for var in [v for v in os.environ if v.startswith(("K8S_AUTH_", "VAULT_"))] + ["KUBECONFIG"]:
                mp.delenv(var, raising=False)
            mp.setenv("KUBECONFIG", "/nonexistent")

            ran = _simulate_workflow(workflow["workflow_nodes"], lambda n, a: run_job(n, a, {}))
            report = "\n".join(f"--- {j['node']}: {j['status']}\n{j['stdout'][-3000:]}" for j in jobs)
            assert ran == [("secrets", True), ("build", True), ("deploy", True), ("verify", True)], report
            build = next(j for j in jobs if j["node"] == "build")
            deploy = next(j for j in jobs if j["node"] == "deploy")
            built = deploy["extravars"]["image_build_result"]
            digest = built["repo_digest"]
            # The deploy job found the build job's image through the workflow artifact (the image stage's
            # contract fact, nothing else), and its files (Secret manifests, SBOM) on the artifact volume,
            # never in another job's private data dir.
            assert digest.startswith(f"{registry.host}/velocity/app@sha256:"), deploy["extravars"]
            flat = ("image_ref", "image_id", "image_digest", "image_repo_digest", "image_pushed_ref", "image_sbom_path",
                    "image_sbom_sha256")
            assert not set(flat) & set(deploy["extravars"]), "only image_build_result crosses from build to deploy"
            assert built["sbom"].startswith(str(shared)), built
            assert Path(built["sbom"]).is_file()
            assert (shared / "secrets" / "app-secret.json").is_file()
            assert "image_build_result" not in build["extravars"]
            live = apps.read_namespaced_deployment("velocity-app", ns)
            assert live.spec.template.spec.containers[0].image == digest
            assert live.spec.template.metadata.annotations["velocity.dev/sbom-sha256"] == built["sbom_sha256"]
            assert live.spec.template.metadata.annotations["velocity.dev/image-digest"] == built["digest"]
            for secret in (vault.secret_id, sa_namespace["token"], registry.password):
                assert all(secret not in json.dumps(j["events"]) for j in jobs)

            # Second release: the deploy fails (an image that does not exist), the workflow takes the
            # rollback node, verify does not run, and the Deployment is back on the first release's digest.
            jobs.clear()
            bad = {"deploy_image": f"{registry.host}/velocity/app@sha256:{'0' * 64}",
                   "deploy_migration_enabled": False, "deploy_smoke_enabled": False}
            ran = _simulate_workflow(workflow["workflow_nodes"],
                                     lambda n, a: run_job(n, a, bad if n["identifier"] == "deploy" else {}))
            report = "\n".join(f"--- {j['node']}: {j['status']}\n{j['stdout'][-3000:]}" for j in jobs)
            assert ran == [("secrets", True), ("build", True), ("deploy", False), ("rollback", True)], report
            failed_deploy = next(j for j in jobs if j["node"] == "deploy")
            assert failed_deploy["extravars"]["deploy_rollback_on_failure"] == "false"  # the node's extra data
            live = apps.read_namespaced_deployment("velocity-app", ns)
            assert live.spec.template.spec.containers[0].image == digest
    finally:
        api.close()
