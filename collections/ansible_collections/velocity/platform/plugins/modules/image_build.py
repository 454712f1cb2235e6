#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_build
short_description: Build a container image only when its content changed
version_added: 0.1.0
description:
  - Builds an image from a build context with the Docker SDK (legacy builder API), with build arguments,
    a target stage, extra labels and extra tags.
  - B(Idempotent by content.) Before building, the module hashes everything that decides the image
    content, namely the context files that C(.dockerignore) lets through (path, executable bit, bytes), the
    Dockerfile, the build arguments, the target, the labels, and the local id of every base image the
    Dockerfile starts C(FROM). The digest is stored in the image label C(velocity.dev/context-digest).
    When an image tagged O(name):O(tag) already carries that digest, nothing is built and C(changed=false).
    (M(community.docker.docker_image) decides by tag existence only.)
  - Build arguments named in O(volatile_build_args) (by default C(CREATED), the OCI created time) are left
    out of the digest, so a fresh timestamp alone never rebuilds; the image keeps the value of the build that made it.
  - Build arguments whose names look like secrets (C(*SECRET*), C(*PASSWORD*), C(*TOKEN*), C(*API_KEY*)...) are refused, because
    their values would stay in the image history. Give secrets to containers at run time.
  - In check mode the module reports whether a build (or a tag) would happen and why.
author:
  - Velocity platform team (@velocity)
options:
  path:
    description:
      - Build context directory (its C(.dockerignore) is honoured). It must be an existing directory.
    type: path
    required: true
  dockerfile:
    description:
      - Dockerfile path relative to O(path) (or absolute).
      - It must resolve, symlinks followed, inside O(path), because Docker reads it from the context it is
        sent; a Dockerfile elsewhere (for example C(../Dockerfile)) fails the task before the engine is contacted.
    type: str
    default: Dockerfile
  name:
    description:
      - Repository name of the image, without tag, for example C(velocity/app). Lowercase path components,
        optionally after a registry host (C(registry.example.com:5000/velocity/app)).
    type: str
    required: true
  tag:
    description: Tag the build gets; the content check looks at O(name):O(tag).
    type: str
    default: latest
  additional_tags:
    description: More tags for the same image, as C(tag) (same repository) or C(repo:tag).
    type: list
    elements: str
    default: []
  build_args:
    description:
      - Build-time variables (C(ARG)). Values become part of the image history, so never secrets.
      - Values are strings or numbers; a list or a mapping fails the task, naming the argument.
      - The app image takes C(BASE_IMAGE), C(VERSION), C(REVISION), C(CREATED), C(SOURCE) (OCI labels).
    type: dict
    default: {}
  volatile_build_args:
    description: Build argument names left out of the content digest (still passed to the build).
    type: list
    elements: str
    default: [CREATED]
  target:
    description: Build stage to stop at (multi-stage Dockerfiles).
    type: str
  labels:
    description: Extra labels for the image (part of the content digest).
    type: dict
    default: {}
  pull:
    description: Pull newer versions of the base images. Keep V(false) offline.
    type: bool
    default: false
  nocache:
    description: Do not use the layer cache when a build happens.
    type: bool
    default: false
  force:
    description: Build even when the content digest matches (the result reports C(changed=true)).
    type: bool
    default: false
extends_documentation_fragment:
  - velocity.platform.docker
  - velocity.platform.docker.attributes
attributes:
  diff_mode:
    description: Returns the content digest before and after.
    support: full
notes:
  - The build runs on the Docker Engine; the module itself runs on the controller and sends the context.
  - For hermetic builds put every dependency in the context (for the app image, C(app/wheelhouse) from
    C(scripts/build-wheelhouse)) and install with C(pip --no-index).
seealso:
  - module: velocity.platform.image_sbom
  - module: velocity.platform.container_smoke_test
"""

EXAMPLES = r"""
- name: Build the app image from its wheelhouse, offline, on the local base image
  velocity.platform.image_build:
    path: "{{ playbook_dir }}/../app"
    name: velocity/app
    tag: "0.1.0"
    additional_tags: [latest]
    build_args:
      BASE_IMAGE: velocity/base:bookworm-3f2a9c1d0e4b
      VERSION: "0.1.0"
      REVISION: "{{ lookup('ansible.builtin.pipe', 'git rev-parse HEAD') }}"
      CREATED: "{{ lookup('ansible.builtin.pipe', 'git log -1 --format=%cI') }}"
      SOURCE: https://git.example.com/velocity/platform
    target: runtime
  register: app_image

- name: Would a build happen?
  velocity.platform.image_build:
    path: app
    name: velocity/app
    tag: "0.1.0"
  check_mode: true
  register: plan
"""

RETURN = r"""
built:
  description: Whether a build ran.
  returned: always
  type: bool
reason:
  description: Why a build ran (or would run), or C(up to date).
  returned: always
  type: str
  sample: no image tagged velocity/app:0.1.0
context_digest:
  description: The content digest computed for this request.
  returned: always
  type: str
  sample: sha256:9b1c...
image:
  description: The image (absent in check mode when a build would happen).
  returned: when the image exists
  type: dict
  contains:
    id:
      description: Image id (config digest).
      type: str
      sample: sha256:21ded43f96c3...
    digest:
      description: Registry digest when the image was pushed or pulled, else the image id.
      type: str
    repo_digests:
      description: Registry digests.
      type: list
      elements: str
    tags:
      description: All tags of the image.
      type: list
      elements: str
    size:
      description: Size in bytes.
      type: int
    labels:
      description: Image labels, including the OCI ones and C(velocity.dev/context-digest).
      type: dict
    user:
      description: The USER the image runs as.
      type: str
tagged:
  description: Tags added by this run.
  returned: always
  type: list
  elements: str
build_log_tail:
  description: Last lines of the build output when a build ran.
  returned: always
  type: list
  elements: str
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
"""

from ansible_collections.velocity.platform.plugins.module_utils.image.build import (
    BuildRequest,
    build,
    current_digest,
    scalar_map,
)
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DockerModuleError,
    EngineSettings,
    connect,
    docker_module,
)


def main() -> None:
    module = docker_module(
        dict(
            path=dict(type="path", required=True),
            dockerfile=dict(type="str", default="Dockerfile"),
            name=dict(type="str", required=True),
            tag=dict(type="str", default="latest"),
            additional_tags=dict(type="list", elements="str", default=[]),
            build_args=dict(type="dict", default={}),
            volatile_build_args=dict(type="list", elements="str", default=["CREATED"]),
            target=dict(type="str"),
            labels=dict(type="dict", default={}),
            pull=dict(type="bool", default=False),
            nocache=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        request = BuildRequest(
            context=p["path"], name=p["name"], tag=p["tag"], dockerfile=p["dockerfile"],
            build_args=scalar_map("build_args", p["build_args"]),
            volatile_build_args=p["volatile_build_args"], target=p["target"],
            labels=scalar_map("labels", p["labels"]), additional_tags=p["additional_tags"],
            pull=p["pull"], nocache=p["nocache"], force=p["force"],
        )
        # Bad input fails here, before the engine is contacted.
        request.validate()
        client = connect(EngineSettings.from_params(p))
        before = current_digest(client, request.ref)
        result = build(client, request, check_mode=module.check_mode)
    except DockerModuleError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    out = dict(
        changed=result.changed, built=result.built, reason=result.reason, context_digest=result.context_digest,
        tagged=result.tagged, build_log_tail=result.log_tail, duration_s=result.duration_s,
    )
    if result.image:
        out["image"] = result.image
    if module._diff:
        out["diff"] = {"before": {"context_digest": before or ""}, "after": {"context_digest": result.context_digest}}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
