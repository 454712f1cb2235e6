# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker Engine connection shared by image_build, image_sbom and container_smoke_test."""

from __future__ import annotations

import os
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
