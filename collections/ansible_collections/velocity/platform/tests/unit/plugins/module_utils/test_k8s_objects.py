# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s import objects as o


def obj(kind, name, wave=None, hook=None, api="v1", **extra):
    anns = {}
    if wave is not None:
        anns[o.WAVE_ANNOTATION] = str(wave)
    if hook:
        anns[o.HOOK_ANNOTATION] = hook
    out = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "annotations": anns}}
    out.update(extra)
    return out


def test_plan_orders_by_wave_then_kind_and_splits_hooks():
    objs = [
        obj("Deployment", "app", 1, api="apps/v1"),
        obj("Service", "app", 0),
        obj("ConfigMap", "app", -1),
        obj("Secret", "app", -1),
        obj("ServiceAccount", "app", -2),
        obj("Job", "migrate", 0, "PreSync", api="batch/v1"),
        obj("Job", "smoke", 0, "PostSync", api="batch/v1"),
    ]
    phases = o.plan(objs)
    assert [(x["kind"]) for x in phases["Sync"]] == ["ServiceAccount", "Secret", "ConfigMap", "Service", "Deployment"]
    assert [x["metadata"]["name"] for x in phases["PreSync"]] == ["migrate"]
    assert [x["metadata"]["name"] for x in phases["PostSync"]] == ["smoke"]
    assert [wave for wave, _objs in o.waves(phases["Sync"])] == [-2, -1, 0, 1]


def test_non_integer_wave_names_the_object():
    with pytest.raises(o.ManifestError, match=r"ConfigMap app: annotation argocd\.argoproj\.io/sync-wave='soon'"):
        o.sync_wave(obj("ConfigMap", "app", "soon"))


def test_unknown_hook_phase_and_delete_policy_are_rejected():
    with pytest.raises(o.ManifestError, match="hook phase 'PreDeploy'"):
        o.hook_phase(obj("Job", "x", hook="PreDeploy"))
    job = obj("Job", "x", hook="PreSync")
    job["metadata"]["annotations"][o.HOOK_DELETE_ANNOTATION] = "HookSucceeded,Never"
    with pytest.raises(o.ManifestError, match="hook-delete-policy 'Never'"):
        o.delete_policies(job)
    assert o.delete_policies(obj("Job", "y", hook="PreSync")) == ["BeforeHookCreation"]


def test_inject_annotations_reaches_pod_templates_and_overrides_manifest_values():
    dep = obj("Deployment", "app", api="apps/v1", spec={"template": {"metadata": {"annotations": {"velocity.dev/image-digest": "stale"}}}})
    cron = obj("CronJob", "c", api="batch/v1", spec={"jobTemplate": {"spec": {"template": {"spec": {}}}}})
    out = o.inject_annotations(dep, {"velocity.dev/source-revision": "abc"}, {"velocity.dev/image-digest": "sha256:1"})
    assert out["metadata"]["annotations"]["velocity.dev/source-revision"] == "abc"
    assert out["spec"]["template"]["metadata"]["annotations"]["velocity.dev/image-digest"] == "sha256:1"
    assert dep["spec"]["template"]["metadata"]["annotations"]["velocity.dev/image-digest"] == "stale"  # input untouched
    cron_out = o.inject_annotations(cron, None, {"k": 1})
    assert cron_out["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"] == {"k": "1"}
    cm = o.inject_annotations(obj("ConfigMap", "c"), None, {"k": "v"})
    assert "spec" not in cm


def test_load_documents_flattens_lists_and_reports_missing_fields():
    text = "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n---\n" \
           "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
    assert [d["metadata"]["name"] for d in o.load_documents(text, "f.yaml")] == ["a", "b"]
    with pytest.raises(o.ManifestError, match=r"f\.yaml document 1 \(ConfigMap\) has no metadata\.name"):
        o.load_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "f.yaml")
    with pytest.raises(o.ManifestError, match="not valid YAML"):
        o.load_documents("a: [", "f.yaml")
    with pytest.raises(o.ManifestError, match="appears twice"):
        o.check_unique([obj("ConfigMap", "a"), obj("ConfigMap", "a")])


def test_secret_values_are_collected_raw_and_decoded_and_masked():
    canary = "canary-" + "s3cr3t-value"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"A": base64.b64encode(canary.encode()).decode()}, "stringData": {"B": "other-canary-9"}}
    values = o.secret_values(secret)
    assert canary in values and "other-canary-9" in values
    masked = json.dumps(o.for_diff(secret))
    assert canary not in masked and "other-canary-9" not in masked and base64.b64encode(canary.encode()).decode() not in masked
    assert o.secret_values(obj("ConfigMap", "c", data={"A": "x"})) == set()


def test_normalise_ignores_server_owned_metadata_and_status():
    live = obj("ConfigMap", "c", data={"a": "1"})
    live["metadata"].update(resourceVersion="5", uid="u", managedFields=[{}], generation=2)
    live["status"] = {"x": 1}
    assert o.normalise(live) == o.normalise(obj("ConfigMap", "c", data={"a": "1"}))
    assert o.normalise(live) != o.normalise(obj("ConfigMap", "c", data={"a": "2"}))


def test_extract_owned_follows_fields_v1():
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"a": "1", "other": "x"}, "finalizers": ["f1", "f2"]},
        "spec": {"replicas": 3, "paused": False, "template": {"spec": {"containers": [
            {"name": "app", "image": "i:1", "terminationMessagePath": "/dev/termination-log"},
            {"name": "side", "image": "s:1"}]}}},
    }
    fields = {
        "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"f1\"": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}}}}}},
    }
    assert o.extract_owned(deploy, fields) == {
        "metadata": {"labels": {"a": "1"}, "finalizers": ["f1"]},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "i:1"}]}}},
    }


def test_managed_entry_picks_the_apply_operation_of_the_manager():
    live = {"metadata": {"managedFields": [
        {"manager": "velocity", "operation": "Update", "fieldsV1": {"u": {}}},
        {"manager": "velocity", "operation": "Apply", "fieldsV1": {"a": {}}},
        {"manager": "velocity", "operation": "Apply", "subresource": "status", "fieldsV1": {"s": {}}},
    ]}}
    assert o.managed_entry(live, "velocity")["fieldsV1"] == {"a": {}}
    assert o.managed_entry(live, "kubectl") is None
