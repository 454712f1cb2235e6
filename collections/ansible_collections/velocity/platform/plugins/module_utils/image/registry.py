# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registries: pushing an image through the Docker Engine, and the pull Secret a cluster needs.

``push`` is idempotent by registry content: before pushing it asks the registry (through the
engine, which holds the registry's TLS trust) which manifest the tag names, and when the local
image already records that manifest among its repo digests, nothing is pushed. The result is
always the registry's manifest digest (``repo@sha256:...``), the one a cluster pulls by.

``pull_secret_manifest`` builds a ``kubernetes.io/dockerconfigjson`` Secret. Registry
passwords never appear in a message: every error text passes through ``scrub`` first.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    TAG,
    DockerException,
    DockerModuleError,
    reference_problem,
    repository_problem,
)

# host, host:port, IPv4:port; what Docker accepts in front of a repository.
_REGISTRY = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def registry_problem(value: Any) -> Optional[str]:
    """None for a registry address (C(host) or C(host:port), no scheme, no path), else what is wrong."""
    if not isinstance(value, str) or not value.strip():
        return "it is empty"
    if "://" in value:
        return "give host[:port] without a scheme (e.g. 127.0.0.1:5000, not https://127.0.0.1:5000)"
    if "/" in value:
        return "give host[:port] without a path (the repository goes into the repository option)"
    if not _REGISTRY.match(value):
        return "it is not a host name or address with an optional :port"
    port = value.rpartition(":")[2] if ":" in value else None
    if port is not None and not 0 < int(port) < 65536:
        return f"port {port} is out of range"
    return None


def scrub(text: str, secrets: "list[str] | tuple[str, ...]") -> str:
    """``text`` with every secret value (and its base64 forms) replaced by ``********``."""
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "********")
    return out


def _auth_b64(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass
class PushRequest:
    source: str
    registry: str
    repository: str
    tag: str
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def target(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def ref(self) -> str:
        return f"{self.target}:{self.tag}"

    def auth_config(self) -> Optional[dict]:
        if not self.username:
            return None
        return {"username": self.username, "password": self.password, "serveraddress": self.registry}

    def secrets(self) -> list:
        return [self.password, _auth_b64(self.username, self.password)] if self.password else []

    def validate(self) -> None:
        """Every check that needs no engine or registry; the message names the option."""
        problem = reference_problem(self.source)
        if problem:
            raise DockerModuleError(f"image {self.source!r} is not an image reference: {problem}")
        problem = registry_problem(self.registry)
        if problem:
            raise DockerModuleError(f"registry {self.registry!r} is not a registry address: {problem}")
        problem = repository_problem(self.repository)
        if problem:
            raise DockerModuleError(f"repository {self.repository!r} is not a repository name: {problem}")
        if not isinstance(self.tag, str) or not TAG.match(self.tag):
            raise DockerModuleError(
                f"tag {self.tag!r} must be at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'")
        if bool(self.username) != bool(self.password):
            missing = "password" if self.username else "username"
            raise DockerModuleError(
                f"{missing} is empty while the other half of the registry credentials is set: give both "
                "username and password, or neither for a registry without authentication")


def default_target(source: str) -> "tuple[str, str]":
    """(repository without registry host, tag) implied by a source reference like C(velocity/app:0.1.0)."""
    name, _at, _digest = source.partition("@")
    tag = "latest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _colon, tag = name.rpartition(":")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts), tag


@dataclass
class PushResult:
    changed: bool
    pushed: bool
    reason: str
    reference: str
    image_id: str
    digest: str = ""
    repo_digest: str = ""
    size: Optional[int] = None
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return {"changed": self.changed, "pushed": self.pushed, "reason": self.reason, "reference": self.reference,
                "image_id": self.image_id, "digest": self.digest, "repo_digest": self.repo_digest,
                "size": self.size, "duration_s": self.duration_s}


def explain(request: PushRequest, message: str) -> str:
    """An engine/registry error as an operator-facing message: which registry, what went wrong, what to do."""
    text = scrub(message, request.secrets())
    low = text.lower()
    where = f"registry {request.registry}"
    if "unauthorized" in low or "authentication required" in low or "401" in low:
        who = f"the credentials of user {request.username!r}" if request.username else "anonymous access"
        return (f"{where} refused {who} for {request.target} ({text}). The registry credentials are wrong or "
                "missing: check the username/password the pipeline reads from Vault (KV secret/velocity/registry, "
                "delivered by the vault_secrets role) against the registry's users; locally, "
                "scripts/vault-bootstrap.sh copies them from scripts/services/registry.sh.")
    if "denied" in low or "forbidden" in low:
        return (f"{where} denied {request.username or 'anonymous'!r} access to {request.target} ({text}): "
                "grant that user push rights on the repository, or push to a repository it may write.")
    if "x509" in low or "certificate" in low or "tls" in low:
        return (f"the Docker Engine does not trust the TLS certificate of {where} ({text}): put the registry's CA "
                f"certificate at /etc/docker/certs.d/{request.registry}/ca.crt on the engine's host "
                "(scripts/services/registry.sh start does this for the local registry).")
    if "connection refused" in low or "no such host" in low or "timeout" in low or "i/o timeout" in low:
        return (f"cannot reach {where} ({text}): start it (locally: scripts/services/registry.sh start) "
                "or set the registry address.")
    return f"pushing {request.ref} to {where} failed: {text}"


def _local_image(client, source: str):
    try:
        return client.images.get(source)
    except DockerException as exc:
        if getattr(exc, "status_code", None) == 404 or type(exc).__name__ == "ImageNotFound":
            raise DockerModuleError(
                f"image {source!r} is not in the local engine: build it first (image_build) or fix the image option"
            ) from None
        raise DockerModuleError(f"cannot inspect image {source!r}: {exc}") from None


def registry_digest(client, request: PushRequest) -> Optional[str]:
    """The manifest digest the registry has for request.ref, or None when the tag does not exist there."""
    try:
        info = client.api.inspect_distribution(request.ref, auth_config=request.auth_config())
    except DockerException as exc:
        if getattr(exc, "status_code", None) == 404 or type(exc).__name__ == "NotFound":
            return None
        explanation = getattr(exc, "explanation", None) or str(exc)
        raise DockerModuleError(explain(request, explanation), registry=request.registry) from None
    return ((info or {}).get("Descriptor") or {}).get("digest")


def push(client, request: PushRequest, check_mode: bool = False) -> PushResult:
    """Push request.source as request.ref unless the registry already holds this image under that tag."""
    started = time.monotonic()
    image = _local_image(client, request.source)
    image_id = image.id
    current = registry_digest(client, request)
    known = set(image.attrs.get("RepoDigests") or [])
    result = PushResult(changed=False, pushed=False, reason="", reference=request.ref, image_id=image_id)
    if current and f"{request.target}@{current}" in known:
        result.reason = "up to date"
        result.digest, result.repo_digest = current, f"{request.target}@{current}"
        result.duration_s = round(time.monotonic() - started, 3)
        return result
    result.reason = (f"{request.ref} is not in the registry" if current is None
                     else f"{request.ref} in the registry is another image ({current})")
    result.changed = True
    if check_mode:
        result.duration_s = round(time.monotonic() - started, 3)
        return result
    if request.ref not in (image.attrs.get("RepoTags") or []):
        image.tag(request.target, tag=request.tag)
    digest, size = _stream_push(client, request)
    result.pushed = True
    result.digest, result.size = digest, size
    result.repo_digest = f"{request.target}@{digest}"
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _stream_push(client, request: PushRequest) -> "tuple[str, Optional[int]]":
    digest, size = "", None
    try:
        for event in client.images.push(request.target, tag=request.tag, auth_config=request.auth_config(),
                                        stream=True, decode=True):
            if event.get("error") or event.get("errorDetail"):
                message = event.get("error") or (event.get("errorDetail") or {}).get("message") or "unknown error"
                raise DockerModuleError(explain(request, message), registry=request.registry)
            aux = event.get("aux") or {}
            if aux.get("Digest"):
                digest, size = aux["Digest"], aux.get("Size")
    except DockerException as exc:
        explanation = getattr(exc, "explanation", None) or str(exc)
        raise DockerModuleError(explain(request, explanation), registry=request.registry) from None
    if not DIGEST.match(digest or ""):
        raise DockerModuleError(
            f"pushing {request.ref} to registry {request.registry} ended without a manifest digest; "
            "see the engine's log (the push may have been interrupted) and run again")
    return digest, size


# -- pull Secret ------------------------------------------------------------------------------------------

def pull_secret_problem(name: Any, namespace: Any, registry: Any, username: Any, password: Any) -> Optional[str]:
    """None when the pull Secret's inputs are usable, else a message naming the option."""
    for field_name, value, label in (("name", name, False), ("namespace", namespace, True)):
        problem = name_problem(value, field_name, label=label)
        if problem:
            return problem
    problem = registry_problem(registry)
    if problem:
        return f"registry {registry!r} is not a registry address: {problem}"
    for field_name, value in (("username", username), ("password", password)):
        if not isinstance(value, str) or not value:
            return (f"{field_name} is empty: the pull Secret needs the registry's {field_name} "
                    "(from Vault: secret/velocity/registry, delivered by the vault_secrets role)")
    if ":" in username:
        return "username must not contain ':' (the registry's Basic auth splits user and password there)"
    return None


def dockerconfigjson(registry: str, username: str, password: str) -> str:
    """The C(.dockerconfigjson) document: one C(auths) entry for the registry."""
    entry = {"username": username, "password": password, "auth": _auth_b64(username, password)}
    return json.dumps({"auths": {registry: entry}}, sort_keys=True, separators=(",", ":"))


def pull_secret_manifest(name: str, namespace: str, registry: str, username: str, password: str,
                         labels: Optional[dict] = None, annotations: Optional[dict] = None) -> dict:
    metadata: dict = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = {str(k): str(v) for k, v in labels.items()}
    if annotations:
        metadata["annotations"] = {str(k): str(v) for k, v in annotations.items()}
    payload = dockerconfigjson(registry, username, password).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": metadata,
        "data": {".dockerconfigjson": base64.b64encode(payload).decode()},
    }


def render_manifest(manifest: dict) -> bytes:
    """Stable bytes for a manifest (JSON, which kubectl and manifest_apply read as YAML too)."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
