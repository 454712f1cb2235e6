# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment revision history and rollback, as `kubectl rollout undo --to-revision`
does it (the ReplicaSet's pod template, without its pod-template-hash label, becomes
the Deployment's template), but through server-side apply under the same field
manager that deployed it, so the next deploy does not hit field-manager conflicts."""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone

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


# Whole-release rollback: the deploy role names the ConfigMap and the Secret by a hash of their data and labels
# them with this label (value: the app's name), so each ReplicaSet names its own configuration.
RELEASE_CONFIG_LABEL = "velocity.dev/release-config"
# Written on the Secret by the deploy role from the secrets stage's result (never the credentials themselves).
LEASE_ID_ANNOTATION = "velocity.dev/vault-lease-id"
LEASE_EXPIRES_ANNOTATION = "velocity.dev/vault-lease-expires-at"


class RolloutError(Exception):
    pass


def config_refs(pod_spec, pull_secrets=True):
    """(ConfigMap names, Secret names) a pod spec reads: envFrom, env valueFrom, volumes (also projected),
    and with pull_secrets its imagePullSecrets."""
    config_maps, secrets = set(), set()
    spec = pod_spec or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or []) + (
        spec.get("ephemeralContainers") or [])
    for container in containers:
        for source in container.get("envFrom") or []:
            if (source.get("configMapRef") or {}).get("name"):
                config_maps.add(source["configMapRef"]["name"])
            if (source.get("secretRef") or {}).get("name"):
                secrets.add(source["secretRef"]["name"])
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if (value_from.get("configMapKeyRef") or {}).get("name"):
                config_maps.add(value_from["configMapKeyRef"]["name"])
            if (value_from.get("secretKeyRef") or {}).get("name"):
                secrets.add(value_from["secretKeyRef"]["name"])
    for volume in spec.get("volumes") or []:
        if (volume.get("configMap") or {}).get("name"):
            config_maps.add(volume["configMap"]["name"])
        if (volume.get("secret") or {}).get("secretName"):
            secrets.add(volume["secret"]["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("configMap") or {}).get("name"):
                config_maps.add(source["configMap"]["name"])
            if (source.get("secret") or {}).get("name"):
                secrets.add(source["secret"]["name"])
    for pull in (spec.get("imagePullSecrets") or []) if pull_secrets else []:
        if pull.get("name"):
            secrets.add(pull["name"])
    return config_maps, secrets


def _pod_spec_of(obj):
    if obj.get("kind") == "Pod":
        return obj.get("spec") or {}
    return (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}


def referenced_configs(client, namespace):
    """(ConfigMap names, Secret names) named by any Deployment, ReplicaSet, Job or Pod of the namespace."""
    config_maps, secrets = set(), set()
    for api_version, kind in (("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"),
                              ("v1", "Pod")):
        for obj in client.list(api_version, kind, namespace=namespace):
            obj.setdefault("kind", kind)
            cms, secs = config_refs(_pod_spec_of(obj))
            config_maps |= cms
            secrets |= secs
    return config_maps, secrets


def prune_candidates(client, namespace, app, keep=()):
    """Release configurations (label RELEASE_CONFIG_LABEL=app) no workload names any more.

    Returns (to_delete, kept): lists of {kind, name}. A ConfigMap or Secret is kept while any Deployment,
    ReplicaSet (the Deployment's history, as long as revisionHistoryLimit keeps it), Job or Pod names it."""
    config_maps, secrets = referenced_configs(client, namespace)
    keep = set(keep or ())
    to_delete, kept = [], []
    for kind, named in (("ConfigMap", config_maps), ("Secret", secrets)):
        items = client.list("v1", kind, namespace=namespace, label_selector=f"{RELEASE_CONFIG_LABEL}={app}")
        for obj in sorted(items, key=lambda o: o["metadata"]["name"]):
            name = obj["metadata"]["name"]
            entry = {"kind": kind, "name": name}
            (kept if name in named or name in keep else to_delete).append(entry)
    return to_delete, kept


def epoch_seconds(raw):
    """Seconds since the epoch of a number or an ISO 8601 time ("2026-12-04T17:35:55Z", with or without
    fractions), or None."""
    raw = str(raw or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def lease_records(client, namespace, template):
    """The Vault leases recorded on the Secrets a pod template names: [{secret, lease_id, expires_at, exists}]."""
    _cms, secrets = config_refs((template or {}).get("spec") or {}, pull_secrets=False)
    records = []
    for name in sorted(secrets):
        secret = client.get("v1", "Secret", name, namespace)
        if secret is None:
            records.append({"secret": name, "exists": False, "lease_id": None, "expires_at": None})
            continue
        anns = secret["metadata"].get("annotations") or {}
        if LEASE_ID_ANNOTATION not in anns and LEASE_EXPIRES_ANNOTATION not in anns:
            continue
        records.append({"secret": name, "exists": True, "lease_id": anns.get(LEASE_ID_ANNOTATION),
                        "expires_at": anns.get(LEASE_EXPIRES_ANNOTATION)})
    return records


def credential_problem(client, deployment, target_rs, now=None, margin=0):
    """Why restoring target_rs would start pods with dead credentials, or None.

    Dead: a Secret the revision names is gone, or its recorded Vault lease (LEASE_EXPIRES_ANNOTATION, written by
    the deploy role from the secrets stage) expires within `margin` seconds. A revoked lease is not visible here
    (that needs Vault: the rollback role looks the lease up when given a Vault login)."""
    now = time.time() if now is None else now
    namespace = deployment["metadata"].get("namespace")
    template = (target_rs.get("spec") or {}).get("template") or {}
    for record in lease_records(client, namespace, template):
        if not record["exists"]:
            return (f"refusing to roll {ref(deployment)} back to revision {revision_of(target_rs)}: the Secret "
                    f"{record['secret']} it names is gone (pruned or deleted), so its pods could not start. Deploy "
                    "that release again instead (the secrets stage issues fresh credentials).")
        expires = epoch_seconds(record["expires_at"])
        if expires is not None and expires - margin <= now:
            when = datetime.fromtimestamp(expires, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            lease_id = record["lease_id"] or "(unknown)"
            return (f"refusing to roll {ref(deployment)} back to revision {revision_of(target_rs)}: its Secret "
                    f"{record['secret']} carries database credentials of Vault lease {lease_id}, which expired at "
                    f"{when} ({int(now - expires)} s ago); restoring it would start pods with dead "
                    "credentials. Deploy that revision's release again instead: the secrets stage issues fresh "
                    "credentials and the deploy writes them into a new Secret (playbooks/site.yml with that "
                    "image and configuration). If the lease was renewed in Vault past the recorded expiry, set "
                    "allow_expired_credentials=true (rollback role: rollback_allow_expired_credentials=true).")
    return None


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
    label_selector = ",".join(f"{name}={value}" for name, value in sorted(selector.items())) or None
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
        kept = ", ".join(str(r) for r in available) or "none"
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit", 10)
        raise RolloutError(f"{ref(deployment)} has no revision {to_revision}; revisions kept: {kept} "
                           f"(revisionHistoryLimit={limit})")
    current = current_replicaset(replicasets, deployment)
    current_rev = revision_of(current) if current else revision_of(deployment)
    older = [rs for rs in replicasets if revision_of(rs) < current_rev]
    if not older:
        kept = ", ".join(str(r) for r in available) or "none"
        raise RolloutError(f"{ref(deployment)} has no revision before {current_rev} to roll back to; revisions kept: "
                           f"{kept}")
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
    for name in list(meta.get("annotations") or {}):
        if name in rs_anns and name not in CONTROLLER_ANNOTATIONS:
            meta["annotations"][name] = rs_anns[name]
    body.setdefault("spec", {})["template"] = template
    return body


def undo(client, deployment, to_revision=0, force=True, check_credentials=True):
    """Point the Deployment at the target revision's template. Returns (changed, target_rs, replicasets).

    With check_credentials, refuses (RolloutError) a revision whose Secret is gone or whose recorded Vault
    lease has expired: the automatic rollback of manifest_apply and rollout_undo both go through here."""
    replicasets = owned_replicasets(client, deployment)
    target = pick_target(replicasets, deployment, to_revision)
    if same_template(target["spec"]["template"], deployment["spec"]["template"]):
        return False, target, replicasets
    if check_credentials:
        problem = credential_problem(client, deployment, target)
        if problem:
            raise RolloutError(problem)
    body = rollback_body(deployment, target, client.field_manager)
    if body is not None:
        client.apply(body, force=force)
    else:
        # Not deployed by our field manager (kubectl, another tool): a JSON patch, as kubectl does.
        client.json_patch(deployment, [
            {"op": "replace", "path": "/spec/template", "value": template_without_hash(target["spec"]["template"])},
        ])
    return True, target, replicasets
