"""Faults in the middle of a task, against the real services: the API server goes away part-way through a
deploy, and the Vault token is revoked between two reads of one task. Each ends in a clear error that says
what happened, and nothing is lost or half-written."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from benchmarks.relay import Relay
from tests.runner import run_module

pytestmark = pytest.mark.slow
SIMULATE = "velocity.dev/simulate"


def _wait_for(what: str, probe, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def namespace(k8s_cluster):
    from kubernetes import client

    ns = "rel-" + uuid.uuid4().hex[:8]
    core = client.CoreV1Api(k8s_cluster.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    yield ns
    core.delete_namespace(ns)


def _objects(ns: str) -> list[dict]:
    def cm(name: str, wave: str) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "annotations": {"argocd.argoproj.io/sync-wave": wave}},
                "data": {"k": name}}

    labels = {"app": "stuck", SIMULATE: "never-ready"}
    stuck = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "stuck", "namespace": ns, "annotations": {"argocd.argoproj.io/sync-wave": "0"}},
             "spec": {"replicas": 1, "progressDeadlineSeconds": 600, "selector": {"matchLabels": {"app": "stuck"}},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"containers": [{"name": "c", "image": "velocity/app:0.1.0"}]}}}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "later", "namespace": ns, "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
               "spec": {"selector": {"app": "stuck"}, "ports": [{"port": 80, "targetPort": 8000}]}}
    return [cm("first", "0"), stuck, cm("second", "1"), service]


@pytest.mark.k8s
def test_api_server_gone_mid_apply_reports_what_was_applied_and_a_rerun_finishes(tmp_path, k8s_cluster, namespace):
    """Wave 0 is applied and waiting for its Deployment when the API server disappears."""
    from kubernetes import client

    api = k8s_cluster.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    config = yaml.safe_load(Path(k8s_cluster.kubeconfig).read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    relay = Relay(server.port)
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    through_relay = tmp_path / "kubeconfig"
    through_relay.write_text(yaml.safe_dump(config))

    outcome: dict = {}
    args = {"kubeconfig": str(through_relay), "definitions": _objects(namespace), "wait_timeout": 300,
            "poll_interval": 0.5}

    def deploy() -> None:
        outcome["result"], outcome["output"] = run_module(tmp_path, "velocity.platform.manifest_apply", args)

    worker = threading.Thread(target=deploy)
    worker.start()
    try:
        def wave_0_exists():
            try:
                return apps.read_namespaced_deployment("stuck", namespace) and \
                    core.read_namespaced_config_map("first", namespace)
            except client.ApiException:
                return None

        _wait_for("wave 0 to be applied", wave_0_exists)  # both objects, applied concurrently
        time.sleep(1.0)  # their answers reach the module; it is now waiting for the Deployment of wave 0
        cut_at = time.monotonic()
        relay.cut()
        worker.join(120)
        assert not worker.is_alive(), "the module hangs after the API server went away"
        failed_after = time.monotonic() - cut_at
    finally:
        relay.cut()
        worker.join(5)

    result = outcome["result"]
    msg = result["msg"]
    assert result["failed"] and result["changed"]
    assert "the Kubernetes API stopped answering" in msg, msg
    assert f"ConfigMap {namespace}/first [created]" in msg and f"Deployment {namespace}/stuck [created]" in msg
    assert f"Not applied (2): ConfigMap {namespace}/second, Service {namespace}/later" in msg
    assert "run the task again" in msg
    assert "Traceback" not in outcome["output"]
    assert failed_after < 30, f"the failure took {failed_after:.1f}s after the cut"
    # What the module says is what the cluster holds.
    assert sorted(result["applied"]) == sorted([f"ConfigMap {namespace}/first", f"Deployment {namespace}/stuck"])
    assert result["not_applied"] == [f"ConfigMap {namespace}/second", f"Service {namespace}/later"]
    live_cms = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
    assert "first" in live_cms and "second" not in live_cms
    assert [s.metadata.name for s in core.list_namespaced_service(namespace).items] == []

    # The API is back: the same task, re-run, applies the rest and leaves the applied objects alone.
    before = apps.read_namespaced_deployment("stuck", namespace).metadata.resource_version
    args.update(kubeconfig=k8s_cluster.kubeconfig, wait=False)
    rerun, _ = run_module(tmp_path, "velocity.platform.manifest_apply", args)
    assert not rerun.get("failed"), rerun.get("msg")
    actions = {entry["ref"]: entry["action"] for entry in rerun["objects"]}
    assert actions == {f"ConfigMap {namespace}/first": "unchanged", f"Deployment {namespace}/stuck": "unchanged",
                       f"ConfigMap {namespace}/second": "created", f"Service {namespace}/later": "created"}
    assert apps.read_namespaced_deployment("stuck", namespace).metadata.resource_version == before


@pytest.mark.vault
def test_vault_token_revoked_between_two_reads_leaves_the_outputs_as_they_were(tmp_path, vault, canary_secrets):
    """AppRole login, the first KV read passes, then the token is revoked before the second read arrives.

    The module pipelines its reads: the second read leaves before Vault has answered the first. So the relay
    holds the second read until the first one's answer is on its way back (Vault has checked the token for it),
    and only then revokes the token and lets the second read through."""
    path, values = canary_secrets
    second = f"velocity/canary2-{uuid.uuid4().hex[:8]}"
    vault.put_secret(second, {"other": "CANARY-second-" + uuid.uuid4().hex})
    env_file, manifest = tmp_path / "app.env", tmp_path / "app-secret.json"
    env_file.write_text("OLD=1\n")
    manifest.write_text('{"old": true}\n')
    for f in (env_file, manifest):
        f.chmod(0o600)

    reads: list[str] = []
    revoked: list[str] = []
    answered_before_first_read: list[int] = []

    def revoke_before_second_read(method: str, path_: str, headers: dict) -> None:
        if "/data/" not in path_:
            return
        reads.append(path_)
        if len(reads) == 1:
            answered_before_first_read.append(relay.answered)  # the login's answer, all of it
        if len(reads) == 2:
            relay.wait_answered(more_than=answered_before_first_read[0])
            body = json.dumps({"token": headers["x-vault-token"]}).encode()
            req = urllib.request.Request(f"{vault.addr}/v1/auth/token/revoke", data=body, method="POST",
                                         headers={"X-Vault-Token": vault.root_token})
            with urllib.request.urlopen(req, timeout=10) as response:
                assert response.status in (200, 204)
            revoked.append(path_)

    vault_port = urlsplit(vault.addr).port
    with Relay(vault_port, on_request=revoke_before_second_read) as relay:
        result, output = run_module(tmp_path, "velocity.platform.vault_secrets", {
            "url": f"http://127.0.0.1:{relay.port}", "auth_method": "approle",
            "role_id": vault.role_id, "secret_id": vault.secret_id, "max_workers": 1,
            "secrets": {"A": f"{path}#key0", "B": f"{second}#other", "C": f"{path}#key1"},
            "env_file": str(env_file), "k8s_secret_name": "velocity-app-secrets", "k8s_secret_file": str(manifest),
        }, verbosity=4)
    assert revoked, f"the relay saw no second KV read: {relay.requests}"
    assert result["failed"]
    assert result.get("error") == "VaultTokenInvalid", result["msg"]
    assert "expired or revoked" in result["msg"] and "Log in again" in result["msg"]
    assert f"on 'secret/data/{second}'" in result["msg"]  # the read that met the revoked token
    assert f"Not written: {env_file} and {manifest} left as they were." in result["msg"]
    assert env_file.read_text() == "OLD=1\n" and manifest.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".app")) == []
    for value in values.values():
        assert value not in output
    assert "Traceback" not in output
