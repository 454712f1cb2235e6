# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker Engine connection and image-reference checks shared by image_build, image_sbom and container_smoke_test."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

try:
    import docker
    from docker.errors import DockerException

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    docker = None
    DockerException = Exception
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = exc

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# Options every Docker module accepts (documented in doc_fragments/docker.py).
DOCKER_COMMON_ARGS: dict[str, Any] = {
    "docker_host": {"type": "str", "aliases": ["docker_url"]},
    "api_timeout": {"type": "int", "default": 300},
}


# Docker's reference grammar (distribution/reference): lowercase path components, an optional registry
# host (with a '.' or a ':port', or localhost) in front, and a tag of at most 128 word characters, '.' and '-'.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def repository_problem(name: Any) -> str | None:
    """None for a valid repository name (without tag), else what is wrong with it."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _DOMAIN.match(parts[0]):
            return f"registry host '{parts[0]}' is not a host name with an optional :port"
        parts = parts[1:]
    for part in parts:
        if not _COMPONENT.match(part):
            return (f"component '{part}' must be lowercase letters and digits, separated by '.', '_', '__' or '-' "
                    "(e.g. velocity/app)")
    if len(name) > 255:
        return "it is longer than 255 characters"
    return None


def reference_problem(ref: Any) -> str | None:
    """None for an image reference a module can look up (name[:tag][@digest], or an image id), else what is wrong."""
    if not isinstance(ref, str) or not ref.strip():
        return "it is empty"
    if re.match(r"^(sha256:)?[0-9a-f]{12,64}$", ref):
        return None
    name, at, digest = ref.partition("@")
    if at and not re.match(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$", digest):
        return f"digest '{digest}' is not algorithm:hex"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, dummy, tag = name.rpartition(":")
        if not TAG.match(tag):
            return f"tag '{tag}' must be at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    return repository_problem(name)


class DockerModuleError(RuntimeError):
    """An expected failure: the message names the object and what to do; no traceback."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.details = details


@dataclass(frozen=True)
class EngineSettings:
    docker_host: str
    api_timeout: int = 300

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "EngineSettings":
        host = params.get("docker_host") or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        return cls(docker_host=host, api_timeout=int(params.get("api_timeout") or 300))


def docker_module(argument_spec: dict[str, Any], **kwargs: Any):
    """The AnsibleModule of a Docker module: its own options plus DOCKER_COMMON_ARGS, and a
    clear failure when the Docker SDK is missing. Every Docker module starts here."""
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib

    module = AnsibleModule(argument_spec=dict(argument_spec, **DOCKER_COMMON_ARGS), **kwargs)
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=str(DOCKER_IMPORT_ERROR))
    return module


def connect(settings: EngineSettings):
    """A DockerClient that answered a ping, or DockerModuleError saying how to start the engine."""
    if not HAS_DOCKER:
        raise DockerModuleError("the Python package 'docker' (Docker SDK) is required on the controller")
    try:
        client = docker.DockerClient(base_url=settings.docker_host, timeout=settings.api_timeout)
        client.ping()
    except DockerException as exc:
        raise DockerModuleError(
            f"cannot reach the Docker Engine at {settings.docker_host}: {exc}. "
            "Start it (scripts/services/docker.sh start) or set docker_host / DOCKER_HOST."
        ) from None
    return client


def image_summary(attrs: dict[str, Any]) -> dict[str, Any]:
    """The facts a caller needs about an image, from `docker image inspect` attributes."""
    config = attrs.get("Config") or {}
    repo_digests = attrs.get("RepoDigests") or []
    return {
        "id": attrs["Id"],
        # A pushed image is addressed by its registry digest; a local one by its config digest (the id).
        "digest": repo_digests[0].split("@", 1)[1] if repo_digests else attrs["Id"],
        "repo_digests": repo_digests,
        "tags": attrs.get("RepoTags") or [],
        "size": attrs.get("Size"),
        "created": attrs.get("Created"),
        "labels": config.get("Labels") or {},
        "user": config.get("User") or "",
        "architecture": attrs.get("Architecture"),
        "os": attrs.get("Os"),
    }
