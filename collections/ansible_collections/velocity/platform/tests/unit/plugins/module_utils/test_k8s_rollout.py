# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
