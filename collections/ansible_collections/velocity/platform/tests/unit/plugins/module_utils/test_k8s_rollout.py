# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s import rollout as r
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import parse_conflicts


def template(image, hash_label=None):
    labels = {"app": "a"}
    if hash_label:
        labels[r.HASH_LABEL] = hash_label
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": image}]}}


def rs(revision, image, history=""):
    anns = {r.REVISION_ANNOTATION: str(revision)}
    if history:
        anns[r.HISTORY_ANNOTATION] = history
    return {"metadata": {"name": "a-%s" % revision, "annotations": anns, "ownerReferences": [{"uid": "u"}]},
            "spec": {"template": template(image, "h%s" % revision)}}


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "a", "namespace": "ns", "uid": "u", "annotations": {r.REVISION_ANNOTATION: "3"},
                       "managedFields": [{"manager": "velocity", "operation": "Apply", "fieldsV1": {
                           "f:metadata": {"f:annotations": {"f:velocity.dev/source-revision": {}}},
                           "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}}}]},
          "spec": {"replicas": 2, "template": template("i:3"), "revisionHistoryLimit": 10}}
DEPLOY["metadata"]["annotations"]["velocity.dev/source-revision"] = "c3"
HISTORY = [rs(1, "i:1"), rs(2, "i:2"), rs(3, "i:3")]


def test_templates_compare_without_the_pod_template_hash():
    assert r.same_template(template("i:1", "h1"), template("i:1"))
    assert not r.same_template(template("i:1", "h1"), template("i:2", "h1"))


def test_previous_revision_is_the_newest_older_than_the_current():
    assert r.revision_of(r.pick_target(HISTORY, DEPLOY, 0)) == 2


def test_chosen_revision_also_matches_former_numbers_of_a_renumbered_replicaset():
    renumbered = [rs(2, "i:2"), rs(3, "i:3"), rs(4, "i:1", history="1")]
    assert r.revision_of(r.pick_target(renumbered, DEPLOY, 1)) == 4


def test_missing_revision_lists_the_kept_ones():
    with pytest.raises(r.RolloutError, match=r"has no revision 9; revisions kept: 1, 2, 3 \(revisionHistoryLimit=10\)"):
        r.pick_target(HISTORY, DEPLOY, 9)


def test_no_previous_revision_is_an_error():
    with pytest.raises(r.RolloutError, match="no revision before 1"):
        r.pick_target([rs(1, "i:3")], DEPLOY, 0)


def test_rollback_body_keeps_owned_fields_and_swaps_the_template():
    target = rs(1, "i:1")
    target["metadata"]["annotations"]["velocity.dev/source-revision"] = "c1"
    body = r.rollback_body(DEPLOY, target, "velocity")
    assert body["spec"]["replicas"] == 2
    assert body["spec"]["template"] == template("i:1")  # hash label gone
    assert body["metadata"] == {"name": "a", "namespace": "ns", "annotations": {"velocity.dev/source-revision": "c1"}}
    assert r.rollback_body(DEPLOY, target, "someone-else") is None


class FakeClient:
    field_manager = "velocity"

    def __init__(self, replicasets):
        self.replicasets = replicasets
        self.applied = []

    def list(self, api_version, kind, namespace=None, label_selector=None):
        return self.replicasets

    def apply(self, body, force=False):
        self.applied.append((body, force))
        return body


def test_undo_reports_unchanged_when_already_on_the_target():
    client = FakeClient(HISTORY)
    changed, _target, _replicasets = r.undo(client, DEPLOY, to_revision=3)
    assert not changed and client.applied == []
    changed, _target, _replicasets = r.undo(client, DEPLOY, to_revision=1)
    assert changed and client.applied[0][0]["spec"]["template"]["spec"]["containers"][0]["image"] == "i:1"


def test_conflicts_are_parsed_into_field_and_manager():
    causes = [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
               "message": 'conflict with "kubectl-edit" using apps/v1: .spec.replicas'},
              {"reason": "FieldValueInvalid", "field": "x"}]
    assert parse_conflicts(causes) == [{"field": ".spec.replicas", "manager": "kubectl-edit", "api_version": "apps/v1"}]


def test_conflict_cause_without_field_in_the_message():
    causes = [{"reason": "FieldManagerConflict", "message": 'conflict with "x-other"', "field": ".data.k"}]
    assert parse_conflicts(causes) == [{"field": ".data.k", "manager": "x-other", "api_version": ""}]


def pod_spec(config_map, secret):
    return {"containers": [{"name": "app", "image": "i",
                            "envFrom": [{"configMapRef": {"name": config_map}}, {"secretRef": {"name": secret}}],
                            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}]}],
            "volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "proj"}}]}}],
            "imagePullSecrets": [{"name": "pull"}]}


def test_config_refs_reads_env_from_env_volumes_and_pull_secrets():
    cms, secrets = r.config_refs(pod_spec("cm-1", "sec-1"))
    assert cms == {"cm-1", "proj"} and secrets == {"sec-1", "other", "pull"}
    assert r.config_refs(pod_spec("cm-1", "sec-1"), pull_secrets=False)[1] == {"sec-1", "other"}


class NamespaceClient:
    """Lists by kind (and the release-config label), gets Secrets by name."""

    def __init__(self, objects):
        self.objects = objects

    def list(self, api_version, kind, namespace=None, label_selector=None):
        items = [o for o in self.objects if o["kind"] == kind]
        if label_selector:
            name, value = label_selector.split("=")
            items = [o for o in items if (o["metadata"].get("labels") or {}).get(name) == value]
        return items

    def get(self, api_version, kind, name, namespace=None):
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def labelled(kind, name, annotations=None):
    return {"kind": kind, "metadata": {"name": name, "labels": {r.RELEASE_CONFIG_LABEL: "app"},
                                       "annotations": annotations or {}}}


def test_prune_keeps_what_any_replicaset_names_and_what_is_listed():
    objects = [
        {"kind": "ReplicaSet", "metadata": {"name": "rs1"}, "spec": {"template": {"spec": pod_spec("cm-1", "sec-1")}}},
        {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": pod_spec("cm-2", "sec-2")}}},
        labelled("ConfigMap", "cm-1"), labelled("ConfigMap", "cm-2"), labelled("ConfigMap", "cm-old"),
        labelled("ConfigMap", "cm-new"), labelled("Secret", "sec-1"), labelled("Secret", "sec-2"),
        labelled("Secret", "sec-old"),
        {"kind": "ConfigMap", "metadata": {"name": "unlabelled"}},
    ]
    to_delete, kept = r.prune_candidates(NamespaceClient(objects), "ns", "app", keep=["cm-new"])
    assert to_delete == [{"kind": "ConfigMap", "name": "cm-old"}, {"kind": "Secret", "name": "sec-old"}]
    assert {e["name"] for e in kept} == {"cm-1", "cm-2", "cm-new", "sec-1", "sec-2"}


def target_rs(secret):
    return {"metadata": {"name": "a-1", "annotations": {r.REVISION_ANNOTATION: "1"}},
            "spec": {"template": {"spec": pod_spec("cm-1", secret)}}}


def test_an_expired_lease_or_a_missing_secret_is_refused_naming_revision_secret_and_lease():
    expired = labelled("Secret", "sec-1", {r.LEASE_ID_ANNOTATION: "database/creds/app/L1",
                                           r.LEASE_EXPIRES_ANNOTATION: "2026-01-01T00:00:00Z"})
    other = {"kind": "Secret", "metadata": {"name": "other"}}
    client = NamespaceClient([expired, other])
    problem = r.credential_problem(client, DEPLOY, target_rs("sec-1"), now=1767225600 + 60)
    assert "revision 1" in problem and "sec-1" in problem and "database/creds/app/L1" in problem
    assert "expired at 2026-01-01T00:00:00Z (60 s ago)" in problem
    assert r.credential_problem(client, DEPLOY, target_rs("sec-1"), now=1767225600 - 60) is None
    assert "sec-gone" in r.credential_problem(client, DEPLOY, target_rs("sec-gone"))
    # A Secret without a recorded lease (credentials not from Vault) is not judged.
    assert r.credential_problem(NamespaceClient([labelled("Secret", "sec-1"), other]), DEPLOY,
                                target_rs("sec-1")) is None


def test_undo_refuses_dead_credentials_unless_told_otherwise():
    expired = labelled("Secret", "sec-1", {r.LEASE_ID_ANNOTATION: "L1", r.LEASE_EXPIRES_ANNOTATION: "1000"})

    class Client(FakeClient, NamespaceClient):
        def __init__(self):
            FakeClient.__init__(self, HISTORY)
            self.objects = [expired, {"kind": "Secret", "metadata": {"name": "other"}}]

        def list(self, api_version, kind, namespace=None, label_selector=None):
            return self.replicasets

    history = [rs(1, "i:1"), rs(2, "i:2"), rs(3, "i:3")]
    history[0]["spec"]["template"]["spec"] = pod_spec("cm-1", "sec-1")
    client = Client()
    client.replicasets = history
    with pytest.raises(r.RolloutError, match=r"refusing to roll Deployment ns/a back to revision 1.*lease L1"):
        r.undo(client, DEPLOY, to_revision=1)
    assert client.applied == []
    changed, _t, _rs = r.undo(client, DEPLOY, to_revision=1, check_credentials=False)
    assert changed and len(client.applied) == 1
