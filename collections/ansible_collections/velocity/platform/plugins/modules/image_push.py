#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_push
short_description: Push a local image to a registry and return its manifest digest
version_added: 0.1.0
description:
  - Pushes a local image (for example the one M(velocity.platform.image_build) made) to a registry through the
    Docker Engine, as O(registry)/O(repository):O(tag), and returns the digest of the manifest the registry
    stored, as C(sha256:...) and as the pullable reference C(registry/repository@sha256:...). Clusters pull the
    image by that reference, so what runs is exactly what was pushed.
  - B(Idempotent by registry content.) Before pushing, the module asks the registry which manifest the tag
    names. When the local image already records that manifest (Docker keeps the digests of pushes in the
    image's C(RepoDigests)), nothing is tagged or pushed and C(changed=false). A rebuilt image, a tag that
    moved in the registry, or a registry that lost its storage is pushed again.
  - Before the push the image gets the tag O(registry)/O(repository):O(tag) in the local engine.
  - The engine talks to the registry, so it must trust the registry's TLS certificate (for a private CA,
    C(/etc/docker/certs.d/<registry>/ca.crt) on the engine's host).
  - Credentials are sent to the engine for this call only; the engine does not store them and the module
    never returns or prints them. A refused login fails the task with a message naming the registry, the
    user and where the credentials come from, never the password.
  - In check mode the module asks the registry and reports whether a push would happen; it changes nothing.
author:
  - Velocity platform team (@velocity)
options:
  image:
    description:
      - The local image to push, as C(name:tag), C(name@digest) or an image id, for example C(velocity/app:0.1.0).
    type: str
    required: true
  registry:
    description:
      - The registry as C(host) or C(host:port), without a scheme, for example C(127.0.0.1:5000) or
        C(registry.example.com).
    type: str
    required: true
  repository:
    description:
      - Repository in the registry, without the registry host, for example C(velocity/app).
      - Defaults to the repository of O(image) with any registry host removed.
    type: str
  tag:
    description:
      - Tag in the registry. Defaults to the tag of O(image) (C(latest) when it has none).
    type: str
  username:
    description:
      - Registry user. Leave empty, together with O(password), for a registry without authentication.
    type: str
    default: ""
  password:
    description:
      - Password or token of O(username). Never logged or returned.
    type: str
    default: ""
extends_documentation_fragment:
  - velocity.platform.docker
  - velocity.platform.docker.attributes
attributes:
  diff_mode:
    description: Returns the registry digest of the tag before and after.
    support: full
notes:
  - The module runs on the controller and drives the engine named by O(docker_host); the engine pushes.
  - Debian's Docker 20.10 pushes Docker image manifests (schema 2); the digest is the one the registry reports
    as C(Docker-Content-Digest) for the tag.
seealso:
  - module: velocity.platform.image_build
  - module: velocity.platform.image_pull_secret
"""

EXAMPLES = r"""
- name: Push the built image to the local registry and keep its digest
  velocity.platform.image_push:
    image: velocity/app:0.1.0
    registry: 127.0.0.1:5000
    repository: velocity/app
    username: "{{ vault_secrets_registry_auth.username }}"
    password: "{{ vault_secrets_registry_auth.password }}"
  register: pushed

- name: Deploy by digest
  ansible.builtin.set_fact:
    deploy_image: "{{ pushed.repo_digest }}"

- name: Would a push happen?
  velocity.platform.image_push:
    image: velocity/app:0.1.0
    registry: registry.example.com
    username: ci
    password: "{{ registry_token }}"
  check_mode: true
  register: plan
"""

RETURN = r"""
pushed:
  description: Whether a push ran.
  returned: always
  type: bool
reason:
  description: Why a push ran (or would run), or C(up to date).
  returned: always
  type: str
  sample: 127.0.0.1:5000/velocity/app:0.1.0 is not in the registry
reference:
  description: The tag in the registry, C(registry/repository:tag).
  returned: always
  type: str
  sample: 127.0.0.1:5000/velocity/app:0.1.0
image_id:
  description: Id (config digest) of the local image.
  returned: always
  type: str
  sample: sha256:21ded43f96c3...
digest:
  description: Digest of the manifest in the registry (empty in check mode when a push would happen).
  returned: always
  type: str
  sample: sha256:d604f65d4de31c9a239bd95a1e8258258dc78083b3c779b48d494d4922efbc45
repo_digest:
  description: The reference to pull by, C(registry/repository@sha256:...) (empty in check mode when a push would happen).
  returned: always
  type: str
  sample: 127.0.0.1:5000/velocity/app@sha256:d604f65d4de31c9a239bd95a1e8258258dc78083b3c779b48d494d4922efbc45
size:
  description: Size in bytes of the manifest the registry stored, when a push ran.
  returned: when a push ran
  type: int
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
"""

from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DockerModuleError,
    EngineSettings,
    connect,
    docker_module,
)
from ansible_collections.velocity.platform.plugins.module_utils.image.registry import (
    PushRequest,
    default_target,
    push,
    registry_digest,
    scrub,
)


def main() -> None:
    module = docker_module(
        dict(
            image=dict(type="str", required=True),
            registry=dict(type="str", required=True),
            repository=dict(type="str"),
            tag=dict(type="str"),
            username=dict(type="str", default=""),
            password=dict(type="str", default="", no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    repository, tag = default_target(p["image"] or "")
    request = PushRequest(source=p["image"], registry=p["registry"], repository=p["repository"] or repository,
                          tag=p["tag"] or tag, username=p["username"] or "", password=p["password"] or "")
    try:
        # Bad input fails here, before the engine or the registry is contacted.
        request.validate()
        client = connect(EngineSettings.from_params(p))
        before = registry_digest(client, request) if module._diff else None
        result = push(client, request, check_mode=module.check_mode)
    except DockerModuleError as exc:
        module.fail_json(msg=scrub(str(exc), request.secrets()), **exc.details)
    out = result.as_dict()
    if out["size"] is None:
        out.pop("size")
    if module._diff:
        out["diff"] = {"before": {"digest": before or ""}, "after": {"digest": result.digest}}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
