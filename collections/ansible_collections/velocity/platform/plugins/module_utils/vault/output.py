# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where secret values go: an env file and a Kubernetes Secret manifest.

Both are written by the module itself, atomically (temp file in the same
directory, fsync, rename) with mode 0600, so that the values never travel
back through Ansible's result, callbacks or logs. The module returns names,
paths and a checksum only.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shlex
from typing import Dict, Optional

from ansible_collections.velocity.platform.plugins.module_utils.common import envfile
from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem, type_name
from ansible_collections.velocity.platform.plugins.module_utils.vault.client import VaultConfigError


def checksum(values: Dict[str, str]) -> str:
    """sha256 over the sorted NAME=value pairs: changes exactly when a value changes.

    It is fit for a pod-template annotation (roll pods when the Secret
    changes). It is a digest of the whole set, which includes a high-entropy
    SECRET_KEY, so it does not help guess a single value.
    """
    digest = hashlib.sha256()
    for name in sorted(values):
        digest.update(name.encode() + b"\0" + values[name].encode() + b"\0")
    return "sha256:" + digest.hexdigest()


def render_env(values: Dict[str, str], fmt: str = "docker") -> bytes:
    """The env file's bytes (common/envfile.py: ``docker`` literal, or ``shell`` quoted)."""
    try:
        return envfile.render(values, fmt)
    except envfile.EnvFileError as exc:
        raise VaultConfigError(str(exc)) from None


def _string_map(field: str, mapping: Optional[dict]) -> Dict[str, str]:
    """Labels or annotations as Kubernetes wants them: string keys, scalar values as strings."""
    out: Dict[str, str] = {}
    for key, value in (mapping or {}).items():
        if not isinstance(key, str) or not key:
            raise VaultConfigError(f"{field}: key {key!r} must be a non-empty string")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise VaultConfigError(f"{field}.{key} must be a string (quote numbers, e.g. '-1'), not {type_name(value)}")
        out[key] = str(value)
    return out


def check_secret_meta(name: str, namespace: Optional[str] = None, labels: Optional[dict] = None,
                      annotations: Optional[dict] = None) -> "tuple[Dict[str, str], Dict[str, str]]":
    """Validate the Secret's metadata before anything is read or written; returns (labels, annotations)."""
    problem = name_problem(name, "k8s_secret_name")
    if problem is None and namespace:
        problem = name_problem(namespace, "k8s_namespace", label=True)
    if problem:
        raise VaultConfigError(problem)
    return _string_map("k8s_labels", labels), _string_map("k8s_annotations", annotations)


def secret_manifest(values: Dict[str, str], name: str, namespace: Optional[str] = None,
                    labels: Optional[dict] = None, annotations: Optional[dict] = None) -> dict:
    labels, annotations = check_secret_meta(name, namespace, labels, annotations)
    meta = {"name": name, "labels": labels,
            "annotations": dict(annotations, **{"velocity.dev/secret-checksum": checksum(values)})}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"].setdefault("app.kubernetes.io/managed-by", "velocity.platform")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {k: base64.b64encode(values[k].encode()).decode() for k in sorted(values)},
    }


def render_manifest(manifest: dict) -> bytes:
    # JSON is valid YAML: kubectl apply -f and kubernetes.core.k8s read it either way.
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def names_diff(old_path: str, new_values: Dict[str, str]) -> dict:
    """A diff that shows names, never values: 'NAME=<unchanged|changed|added>' lines."""
    old: Dict[str, str] = {}
    try:
        with open(old_path) as handle:
            for line in handle:
                if "=" in line and not line.startswith("#"):
                    name, dummy, value = line.rstrip("\n").partition("=")
                    old[name] = value
    except OSError:
        pass
    new_rendered = dict(new_values)
    before = "".join(f"{name}=<hidden>\n" for name in sorted(old))
    after_lines = []
    for name in sorted(new_rendered):
        if name not in old:
            after_lines.append(f"{name}=<hidden, added>\n")
        elif old[name] not in (new_rendered[name], shlex.quote(new_rendered[name])):
            after_lines.append(f"{name}=<hidden, changed>\n")
        else:
            after_lines.append(f"{name}=<hidden>\n")
    return {"before": before, "after": "".join(after_lines), "before_header": old_path, "after_header": old_path}
