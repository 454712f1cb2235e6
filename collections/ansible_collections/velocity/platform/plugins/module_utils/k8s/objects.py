# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure functions on Kubernetes objects (plain dicts): loading, annotating, ordering
by Argo CD sync wave and hook phase, masking Secrets, normalising for comparison and
extracting the fields one field manager owns. No API calls here."""

from __future__ import annotations

import copy
import json

from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem, object_name_problem

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

MASK = "********"
WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HOOK_DELETE_ANNOTATION = "argocd.argoproj.io/hook-delete-policy"
HOOK_PHASES = ("PreSync", "Sync", "PostSync", "SyncFail", "Skip")
DELETE_POLICIES = ("BeforeHookCreation", "HookSucceeded", "HookFailed")

# Argo CD's kind order inside one wave (gitops-engine sync_tasks.go), shortened to what we use.
KIND_ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy", "PodDisruptionBudget",
    "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet",
    "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet",
    "Job", "CronJob", "IngressClass", "Ingress", "APIService",
]

# Kinds with a pod template and where it sits.
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

# Metadata the server owns: never part of a comparison or a diff.
SERVER_METADATA = ("resourceVersion", "generation", "managedFields", "creationTimestamp", "uid", "selfLink")


class ManifestError(Exception):
    """An input manifest is unusable; the message names the source and the object."""


def load_documents(text, source):
    """Parse one YAML stream into a list of dicts (empty documents and List kinds flattened)."""
    if not HAS_YAML:  # pragma: no cover
        raise ManifestError(f"PyYAML is required to read {source}")
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source} is not valid YAML: {exc}") from None
    return flatten(docs, source)


def flatten(docs, source):
    """The objects of ``docs`` (nested lists and List kinds flattened), each checked before any API call:
    apiVersion and kind are strings, metadata a mapping, metadata.name a valid name for the kind
    (DNS-1123 subdomain; a label for a Namespace) and metadata.namespace, when given, a DNS-1123 label."""
    out = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if isinstance(doc, list):
            out.extend(flatten(doc, source))
            continue
        where = f"{source} document {index + 1}"
        if not isinstance(doc, dict):
            raise ManifestError(f"{where} is a {type(doc).__name__}, not a Kubernetes object (a mapping with "
                                "apiVersion, kind and metadata)")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
            out.extend(flatten(doc["items"], f"{where} ({kind})"))
            continue
        for field in ("apiVersion", "kind"):
            if not doc.get(field):
                raise ManifestError(f"{where} has no {field}")
            if not isinstance(doc[field], str):
                raise ManifestError(f"{where}: {field} must be a string, not {type(doc[field]).__name__} "
                                    f"{doc[field]!r}")
        meta = doc.get("metadata")
        if not isinstance(meta, dict):
            has = "no metadata" if meta is None else f"metadata that is a {type(meta).__name__}, not a mapping"
            raise ManifestError(f"{where} ({kind}) has {has}: give metadata as a mapping with at least a name")
        if not meta.get("name"):
            raise ManifestError(f"{where} ({kind}) has no metadata.name")
        problem = object_name_problem(kind, meta["name"], "metadata.name")
        if problem is None and meta.get("namespace") is not None:
            problem = name_problem(meta["namespace"], "metadata.namespace", label=True)
        if problem:
            shown = str(meta["name"]) if len(str(meta["name"])) <= 70 else f"{str(meta['name'])[:20]}..."
            raise ManifestError(f"{where} ({kind} {shown}): {problem}")
        out.append(doc)
    return out


def ref(obj):
    """Human reference: Kind namespace/name."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    prefix = ns + "/" if ns else ""
    return f"{obj.get('kind')} {prefix}{meta.get('name')}"


def key(obj):
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace") or "", meta.get("name"))


def check_unique(objs):
    seen = set()
    for obj in objs:
        k = key(obj)
        if k in seen:
            raise ManifestError(f"{ref(obj)} appears twice in the input; each object must be given once")
        seen.add(k)


def annotations_of(obj):
    return (obj.get("metadata") or {}).get("annotations") or {}


def pod_template(obj):
    path = POD_TEMPLATE_PATHS.get(obj.get("kind"))
    if not path:
        return None
    node = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def inject_annotations(obj, annotations=None, pod_annotations=None, labels=None):
    """Return a copy with annotations on the object and pod_annotations on its pod template.

    Values are stringified (Kubernetes annotations are strings); the input wins
    nothing: injected values overwrite what the manifest says, so provenance cannot
    be spoofed by a stale manifest.
    """
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    if annotations:
        meta.setdefault("annotations", {}).update(dict((k, str(v)) for k, v in annotations.items()))
    if labels:
        meta.setdefault("labels", {}).update(dict((k, str(v)) for k, v in labels.items()))
    template = pod_template(obj)
    if template is not None and pod_annotations:
        template.setdefault("metadata", {}).setdefault("annotations", {}).update(
            dict((k, str(v)) for k, v in pod_annotations.items())
        )
    return obj


def sync_wave(obj):
    raw = annotations_of(obj).get(WAVE_ANNOTATION, "0")
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ManifestError(f"{ref(obj)}: annotation {WAVE_ANNOTATION}={raw!r} is not an integer") from None


def hook_phase(obj):
    """'PreSync', 'PostSync', ... for hooks; None for ordinary objects."""
    raw = annotations_of(obj).get(HOOK_ANNOTATION)
    if not raw:
        return None
    phases = [p.strip() for p in str(raw).split(",") if p.strip()]
    for phase in phases:
        if phase not in HOOK_PHASES:
            raise ManifestError(f"{ref(obj)}: hook phase {phase!r} is not one of {', '.join(HOOK_PHASES)}")
    if len(phases) != 1:
        raise ManifestError(f"{ref(obj)}: give one hook phase, not {raw!r}")
    return phases[0]


def delete_policies(obj):
    raw = annotations_of(obj).get(HOOK_DELETE_ANNOTATION)
    if not raw:
        return ["BeforeHookCreation"]  # Argo CD's default
    policies = [p.strip() for p in str(raw).split(",") if p.strip()]
    for policy in policies:
        if policy not in DELETE_POLICIES:
            raise ManifestError(f"{ref(obj)}: hook-delete-policy {policy!r} is not one of {', '.join(DELETE_POLICIES)}")
    return policies


def sort_key(obj):
    kind = obj.get("kind")
    kind_rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return (sync_wave(obj), kind_rank, kind, (obj.get("metadata") or {}).get("name"))


def plan(objs):
    """Split into phases, each ordered by wave then kind then name.

    Returns {"PreSync": [...], "Sync": [...], "PostSync": [...], "Skip": [...]}; Sync holds
    the ordinary objects and Sync-phase hooks (applied like ordinary objects).
    """
    phases = {"PreSync": [], "Sync": [], "PostSync": [], "SyncFail": [], "Skip": []}
    for obj in objs:
        phases[hook_phase(obj) or "Sync"].append(obj)
    for items in phases.values():
        items.sort(key=sort_key)
    return phases


def waves(objs):
    """Group an ordered list into [(wave, [objs])]."""
    groups = []
    for obj in objs:
        wave = sync_wave(obj)
        if groups and groups[-1][0] == wave:
            groups[-1][1].append(obj)
        else:
            groups.append((wave, [obj]))
    return groups


def is_secret(obj):
    return obj.get("kind") == "Secret" and str(obj.get("apiVersion", "v1")) == "v1"


def secret_values(obj):
    """Every value of a Secret, raw and decoded, to register as no_log values."""
    import base64

    values = set()
    if not is_secret(obj):
        return values
    for value in (obj.get("stringData") or {}).values():
        if value:
            values.add(str(value))
    for value in (obj.get("data") or {}).values():
        if not value:
            continue
        values.add(str(value))
        try:
            decoded = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if decoded:
            values.add(decoded)
    return values


def mask(obj):
    """Copy with every Secret value replaced by MASK, also in last-applied annotations."""
    if obj is None:
        return None
    obj = copy.deepcopy(obj)
    if is_secret(obj):
        for field in ("data", "stringData"):
            if isinstance(obj.get(field), dict):
                obj[field] = dict((k, MASK) for k in obj[field])
        anns = annotations_of(obj)
        if "kubectl.kubernetes.io/last-applied-configuration" in anns:
            anns["kubectl.kubernetes.io/last-applied-configuration"] = MASK
    return obj


def normalise(obj):
    """Comparable form: without status and server-owned metadata."""
    if obj is None:
        return None
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata") or {}
    for field in SERVER_METADATA:
        meta.pop(field, None)
    anns = meta.get("annotations")
    if isinstance(anns, dict):
        anns.pop("deployment.kubernetes.io/revision", None)
        if not anns:
            meta.pop("annotations", None)
    return obj


def for_diff(obj):
    return mask(normalise(obj))


def _field_name(tree_key):
    return tree_key[2:]


def extract_owned(value, fields):
    """The part of `value` described by a managedFields fieldsV1 tree.

    Keys: ``f:<field>`` map field, ``k:<json>`` list item by key, ``v:<json>`` set
    member, ``i:<n>`` list index, ``.`` the node itself. A subtree that is empty (or
    only ``.``) is a leaf owned whole.
    """
    children = dict((k, v) for k, v in (fields or {}).items() if k != ".")
    if not children:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        out = {}
        for tree_key, sub in children.items():
            if tree_key.startswith("f:"):
                name = _field_name(tree_key)
                if name in value:
                    out[name] = extract_owned(value[name], sub)
        return out
    if isinstance(value, list):
        out = []
        for tree_key, sub in children.items():
            if tree_key.startswith("k:"):
                wanted = json.loads(tree_key[2:])
                for item in value:
                    if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
                        extracted = extract_owned(item, sub)
                        extracted.update(wanted)  # keys identify the item even if not listed
                        out.append(extracted)
                        break
            elif tree_key.startswith("v:"):
                member = json.loads(tree_key[2:])
                if member in value:
                    out.append(member)
            elif tree_key.startswith("i:"):
                index = int(tree_key[2:])
                if index < len(value):
                    out.append(extract_owned(value[index], sub))
        return out
    return copy.deepcopy(value)


def managed_entry(obj, manager, operation="Apply"):
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == operation and not entry.get("subresource"):
            return entry
    return None
