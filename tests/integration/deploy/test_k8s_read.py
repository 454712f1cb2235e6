"""velocity.platform.k8s_read against the real API server, through ansible-playbook: several reads in one
task give what the API server holds (a named object, a list by label, a list by field, a missing name as an
empty list), the same in check mode; bad input fails naming the query before any request; a kind the server
does not serve fails naming the query's key; a Secret's values appear nowhere in the output at -vvv."""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.runner import Playbook

pytestmark = [pytest.mark.k8s]


@pytest.fixture
def config_maps(client):
    """Three ConfigMaps in default: two labelled with this test's tag, one not."""
    tag = uuid.uuid4().hex[:8]
    objs = [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": f"read-{tag}-{n}", "namespace": "default",
                          "labels": {"velocity.dev/test": tag if n < 2 else "other"}},
             "data": {"n": str(n)}} for n in range(3)]
    for obj in objs:
        client.apply(obj)
    yield tag, [o["metadata"]["name"] for o in objs]
    for obj in objs:
        client.delete(obj)


def queries(tag, names):
    return [
        {"key": "one", "kind": "ConfigMap", "namespace": "default", "name": names[0]},
        {"key": "tagged", "kind": "ConfigMap", "namespace": "default", "label_selectors": [f"velocity.dev/test={tag}"]},
        {"key": "by_field", "kind": "ConfigMap", "namespace": "default",
         "field_selectors": [f"metadata.name={names[2]}"]},
        {"key": "missing", "kind": "ConfigMap", "namespace": "default", "name": f"read-{tag}-absent"},
        {"key": "namespace", "kind": "Namespace", "name": "default"},
    ]


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_reads_return_what_the_api_server_holds(tmp_path, k8s_cluster, config_maps, check):
    tag, names = config_maps
    result, proc = Playbook(tmp_path).module("k8s_read", {"kubeconfig": k8s_cluster.kubeconfig,
                                                          "queries": queries(tag, names)}, check=check)
    assert not result.get("failed"), result.get("msg") or proc.stdout[-3000:]
    assert result["changed"] is False and result["requests"] == 5
    got = {key: sorted(o["metadata"]["name"] for o in objs) for key, objs in result["resources"].items()}
    assert got == {"one": [names[0]], "tagged": names[:2], "by_field": [names[2]], "missing": [],
                   "namespace": ["default"]}
    assert result["resources"]["one"][0]["data"] == {"n": "0"}


def test_bad_input_fails_before_any_request(tmp_path):
    # The kubeconfig does not exist: a failure about the queries shows no connection was tried.
    bad = [{"key": "a", "kind": "ConfigMap", "name": "x"}, {"key": "a", "kind": "Secret", "name": "y"}]
    result, _ = Playbook(tmp_path).module("k8s_read", {"kubeconfig": str(tmp_path / "none"), "queries": bad})
    assert result["failed"] and result["msg"] == ("queries[1] (key 'a'): key is also used by queries[0]; "
                                                  "keys must be unique")
    result, _ = Playbook(tmp_path).module("k8s_read", {"kubeconfig": str(tmp_path / "none"), "queries": [
        {"key": "pods", "kind": "Pod", "namespace": "Not_A_Namespace"}]})
    assert result["failed"] and result["msg"].startswith("queries[0] (key 'pods'): namespace"), result["msg"]


def test_a_kind_the_server_does_not_serve_names_the_query(tmp_path, k8s_cluster):
    result, _ = Playbook(tmp_path).module("k8s_read", {"kubeconfig": k8s_cluster.kubeconfig, "queries": [
        {"key": "widgets", "kind": "Widget", "api_version": "example.com/v1", "namespace": "default"}]})
    assert result["failed"] and result["msg"].startswith("query 'widgets': the API server does not serve kind Widget")


def test_secret_values_never_reach_the_output(tmp_path, k8s_cluster, client):
    canary = f"canary-{uuid.uuid4().hex}"
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": f"read-{uuid.uuid4().hex[:8]}", "namespace": "default"},
              "stringData": {"password": canary}}
    client.apply(secret)
    try:
        result, proc = Playbook(tmp_path).module("k8s_read", {"kubeconfig": k8s_cluster.kubeconfig, "queries": [
            {"key": "named", "kind": "Secret", "namespace": "default", "name": secret["metadata"]["name"]},
            {"key": "listed", "kind": "Secret", "namespace": "default",
             "field_selectors": [f"metadata.name={secret['metadata']['name']}"]}]}, verbosity=3)
        assert not result.get("failed"), result.get("msg")
        data = [o["data"] for o in result["resources"]["named"] + result["resources"]["listed"]]
        assert data == [{"password": "<redacted>"}] * 2
        output = proc.stdout + proc.stderr + repr(result)
        assert canary not in output and base64.b64encode(canary.encode()).decode() not in output
    finally:
        client.delete(secret)
