# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment revision history and rollback, as `kubectl rollout undo --to-revision`
does it (the ReplicaSet's pod template, without its pod-template-hash label, becomes
the Deployment's template), but through server-side apply under the same field
manager that deployed it, so the next deploy does not hit field-manager conflicts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.velocity.platform.plugins.module_utils.k8s.objects import (
    extract_owned,
    managed_entry,
    ref,
)

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
# Annotations the deployment controller keeps for itself; never copied from a ReplicaSet.
CONTROLLER_ANNOTATIONS = (
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "kubectl.kubernetes.io/last-applied-configuration",
)


class RolloutError(Exception):
    pass


def revisions_of(rs):
    """The revision of a ReplicaSet and the older numbers it had (a rollback renumbers it)."""
    anns = (rs.get("metadata") or {}).get("annotations") or {}
    older = []
    for raw in str(anns.get(HISTORY_ANNOTATION, "")).split(","):
        if raw.strip().isdigit():
            older.append(int(raw.strip()))
    return [revision_of(rs), *older]


def revision_of(obj):
    raw = ((obj or {}).get("metadata") or {}).get("annotations", {}) or {}
    try:
        return int(raw.get(REVISION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


def template_without_hash(template):
    template = copy.deepcopy(template or {})
    meta = template.setdefault("metadata", {})
    labels = meta.get("labels") or {}
    labels.pop(HASH_LABEL, None)
    if not labels:
        meta.pop("labels", None)
    if meta.get("creationTimestamp") is None:
        meta.pop("creationTimestamp", None)
    if not meta:
        template.pop("metadata", None)
    return template


def same_template(a, b):
    return template_without_hash(a) == template_without_hash(b)


def owned_replicasets(client, deployment):
    meta = deployment["metadata"]
    selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    label_selector = ",".join("%s=%s" % kv for kv in sorted(selector.items())) or None
    items = client.list("apps/v1", "ReplicaSet", namespace=meta.get("namespace"), label_selector=label_selector)
    owned = [rs for rs in items
             if any(o.get("uid") == meta.get("uid") for o in (rs["metadata"].get("ownerReferences") or []))]
    return sorted(owned, key=revision_of)


def describe(rs, current_rev):
    template = (rs.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    anns = rs["metadata"].get("annotations") or {}
    pod_anns = (template.get("metadata") or {}).get("annotations") or {}
    return {
        "revision": revision_of(rs),
        "former_revisions": revisions_of(rs)[1:],
        "replicaset": rs["metadata"]["name"],
        "images": [c.get("image") for c in containers],
        "created": rs["metadata"].get("creationTimestamp"),
        "replicas": (rs.get("status") or {}).get("replicas", 0),
        "current": revision_of(rs) == current_rev,
        "change_cause": anns.get(CHANGE_CAUSE_ANNOTATION),
        "provenance": dict((k, v) for k, v in pod_anns.items() if k.startswith("velocity.dev/")),
    }


def history(client, deployment):
    """[{revision, replicaset, images, created, replicas, current, change_cause, provenance}], oldest first."""
    current = revision_of(deployment)
    return [describe(rs, current) for rs in owned_replicasets(client, deployment)]


def current_replicaset(replicasets, deployment):
    template = (deployment.get("spec") or {}).get("template")
    for rs in reversed(replicasets):
        if same_template(rs["spec"]["template"], template):
            return rs
    return None


def pick_target(replicasets, deployment, to_revision):
    """The ReplicaSet to roll back to: `to_revision`, or the newest one older than the current."""
    available = [revision_of(rs) for rs in replicasets]
    if to_revision:
        for rs in replicasets:
            if to_revision in revisions_of(rs):
                return rs
        raise RolloutError("%s has no revision %s; revisions kept: %s (revisionHistoryLimit=%s)" % (
            ref(deployment), to_revision, ", ".join(str(r) for r in available) or "none",
            (deployment.get("spec") or {}).get("revisionHistoryLimit", 10)))
    current = current_replicaset(replicasets, deployment)
    current_rev = revision_of(current) if current else revision_of(deployment)
    older = [rs for rs in replicasets if revision_of(rs) < current_rev]
    if not older:
        raise RolloutError("%s has no revision before %s to roll back to; revisions kept: %s" % (
            ref(deployment), current_rev, ", ".join(str(r) for r in available) or "none"))
    return older[-1]


def rollback_body(deployment, target_rs, field_manager):
    """Apply body that restores target_rs's template and keeps every other field the manager owns."""
    template = template_without_hash(target_rs["spec"]["template"])
    entry = managed_entry(deployment, field_manager, "Apply")
    if entry is None:
        return None
    body = extract_owned(deployment, entry.get("fieldsV1") or {})
    body["apiVersion"] = deployment["apiVersion"]
    body["kind"] = deployment["kind"]
    meta = body.setdefault("metadata", {})
    meta["name"] = deployment["metadata"]["name"]
    meta["namespace"] = deployment["metadata"].get("namespace")
    rs_anns = target_rs["metadata"].get("annotations") or {}
    for name in list((meta.get("annotations") or {})):
        if name in rs_anns and name not in CONTROLLER_ANNOTATIONS:
            meta["annotations"][name] = rs_anns[name]
    body.setdefault("spec", {})["template"] = template
    return body


def undo(client, deployment, to_revision=0, force=True):
    """Point the Deployment at the target revision's template. Returns (changed, target_rs, replicasets)."""
    replicasets = owned_replicasets(client, deployment)
    target = pick_target(replicasets, deployment, to_revision)
    if same_template(target["spec"]["template"], deployment["spec"]["template"]):
        return False, target, replicasets
    body = rollback_body(deployment, target, client.field_manager)
    if body is not None:
        client.apply(body, force=force)
    else:
        # Not deployed by our field manager (kubectl, another tool): a JSON patch, as kubectl does.
        client.json_patch(deployment, [
            {"op": "replace", "path": "/spec/template", "value": template_without_hash(target["spec"]["template"])},
        ])
    return True, target, replicasets
