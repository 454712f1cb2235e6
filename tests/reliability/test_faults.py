"""Faults an operator meets, each against the real service: a clear error, nothing left behind."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

import pytest
import yaml

from tests.runner import run_module

pytestmark = pytest.mark.slow


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.docker
def test_docker_daemon_unreachable_names_the_engine(tmp_path, docker_engine):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    host = f"unix://{tmp_path}/no-docker.sock"
    result, _ = run_module(tmp_path, "velocity.platform.image_build",
                           {"path": str(tmp_path / "ctx"), "name": "velocity/fault", "tag": "x", "docker_host": host})
    assert result["failed"]
    assert host in result["msg"] or "Docker" in result["msg"]
    assert "Traceback (most recent call last)" not in json.dumps(result)


@pytest.mark.docker
def test_build_context_missing_a_file_fails_with_the_build_error(tmp_path, docker_engine):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY not-there.txt /\n")
    tag = uuid.uuid4().hex[:8]
    result, _ = run_module(tmp_path, "velocity.platform.image_build",
                           {"path": str(tmp_path / "ctx"), "name": "velocity/fault", "tag": tag})
    assert result["failed"]
    assert "not-there.txt" in result["msg"]
    images = subprocess.run(["docker", "images", "-q", f"velocity/fault:{tag}"], capture_output=True, text=True).stdout
    assert images.strip() == ""


@pytest.mark.docker
@pytest.mark.postgres
def test_app_that_crashes_on_start_fails_the_smoke_test_with_its_log_and_no_container(tmp_path, app_image, postgres):
    env_file = tmp_path / "app.env"
    canary = "canary-db-password-" + uuid.uuid4().hex[:8]
    # No SECRET_KEY: the app refuses to start, as it must.
    env_file.write_text(f"DATABASE_URL=postgresql://u:{canary}@127.0.0.1:{postgres.port}/velocity\n")
    env_file.chmod(0o600)
    before = subprocess.run(["docker", "ps", "-aq", "--filter", "label=velocity.dev/smoke-test"],
                            capture_output=True, text=True).stdout.split()
    result, output = run_module(tmp_path, "velocity.platform.container_smoke_test",
                                {"image": app_image, "env_file": str(env_file), "network_mode": "host",
                                 "timeout": 60}, verbosity=3)
    assert result["failed"]
    assert "SECRET_KEY" in result["msg"]  # the app's own message, from the log tail
    assert canary not in output
    after = subprocess.run(["docker", "ps", "-aq", "--filter", "label=velocity.dev/smoke-test"],
                           capture_output=True, text=True).stdout.split()
    assert set(after) <= set(before)


@pytest.mark.k8s
def test_api_server_unreachable_is_a_clear_error(tmp_path, k8s_cluster):
    config = yaml.safe_load(open(k8s_cluster.kubeconfig))
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    result, _ = run_module(tmp_path, "velocity.platform.manifest_apply", {
        "kubeconfig": str(broken),
        "definitions": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"},
                         "data": {"a": "b"}}]})
    assert result["failed"]
    assert "cannot reach the Kubernetes API" in result["msg"]


@pytest.mark.k8s
def test_immutable_field_change_is_refused_with_a_suggestion_and_changes_nothing(tmp_path, k8s_cluster):
    from kubernetes import client

    ns = "rel-" + uuid.uuid4().hex[:8]
    api = k8s_cluster.api_client()
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        def deployment(selector: str) -> dict:
            labels = {"app": selector}
            return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "immut", "namespace": ns},
                    "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels},
                                          "spec": {"containers": [{"name": "c", "image": "velocity/app:0.1.0"}]}}}}

        first, _ = run_module(tmp_path, "velocity.platform.manifest_apply",
                              {"kubeconfig": k8s_cluster.kubeconfig, "definitions": [deployment("one")], "wait": False})
        assert not first.get("failed"), first.get("msg")
        before = client.AppsV1Api(api).read_namespaced_deployment("immut", ns).metadata.resource_version
        second, _ = run_module(tmp_path, "velocity.platform.manifest_apply",
                               {"kubeconfig": k8s_cluster.kubeconfig, "definitions": [deployment("two")], "wait": False})
        assert second["failed"]
        assert "immutable" in second["msg"] and f"kubectl -n {ns} delete deployment/immut" in second["msg"]
        assert "nothing was changed" in second["msg"]
        after = client.AppsV1Api(api).read_namespaced_deployment("immut", ns).metadata.resource_version
        assert after == before
    finally:
        client.CoreV1Api(api).delete_namespace(ns)
