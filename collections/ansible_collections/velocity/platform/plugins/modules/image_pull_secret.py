#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_pull_secret
short_description: Write a registry pull Secret (kubernetes.io/dockerconfigjson) manifest file
version_added: 0.1.0
description:
  - Writes the manifest of a Kubernetes Secret of type C(kubernetes.io/dockerconfigjson) that lets a cluster
    pull images from O(registry) as O(username). A Pod (or its ServiceAccount) names it in C(imagePullSecrets).
  - B(Values stay out of Ansible's output.) The module writes the file itself (mode 0600, atomically, through a temp
    file, fsync and rename) and returns only the path, the Secret's name and namespace, the registry and a checksum.
    O(password) is a no_log option; the module never returns or prints the credentials.
  - Reports C(changed) only when the file's content or mode changes. In check mode nothing is written.
  - The credentials usually come from Vault through the secrets stage (role C(velocity.platform.vault_secrets),
    KV C(secret/velocity/registry)), and the deploy role applies the file with the rest of the release.
author:
  - Velocity platform team (@velocity)
options:
  dest:
    description:
      - File the Secret manifest is written to (JSON, which is also YAML). Its directory is created (0700) if missing.
      - Like every file that holds secrets, it must not be inside a Git working tree unless Git ignores it.
    type: path
    required: true
  name:
    description: Name of the Secret (a DNS-1123 subdomain), for example V(velocity-registry).
    type: str
    required: true
  namespace:
    description: Namespace of the Secret; Pods can only use a pull Secret of their own namespace.
    type: str
    required: true
  registry:
    description:
      - The registry as C(host) or C(host:port), exactly as image references name it, for example C(127.0.0.1:5000).
    type: str
    required: true
  username:
    description: Registry user.
    type: str
    required: true
  password:
    description: Password or token of O(username). Never logged or returned.
    type: str
    required: true
  labels:
    description: Labels of the Secret.
    type: dict
    default: {}
  annotations:
    description: Annotations of the Secret (for example an Argo CD sync wave).
    type: dict
    default: {}
extends_documentation_fragment:
  - velocity.platform.module_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    description: Returns the file's checksum before and after (never the content).
    support: full
  platform:
    platforms: posix
seealso:
  - module: velocity.platform.image_push
  - module: velocity.platform.vault_secrets
  - module: velocity.platform.manifest_apply
"""

EXAMPLES = r"""
- name: Write the pull Secret for the local registry (credentials from the secrets stage, no_log facts)
  velocity.platform.image_pull_secret:
    dest: /tmp/velocity/secrets/registry-pull-secret.json
    name: velocity-registry
    namespace: velocity
    registry: 127.0.0.1:5000
    username: "{{ vault_secrets_registry_auth.username }}"
    password: "{{ vault_secrets_registry_auth.password }}"
    annotations:
      argocd.argoproj.io/sync-wave: "-1"
"""

RETURN = r"""
path:
  description: The manifest file.
  returned: always
  type: str
  sample: /tmp/velocity/secrets/registry-pull-secret.json
name:
  description: Name of the Secret.
  returned: always
  type: str
  sample: velocity-registry
namespace:
  description: Namespace of the Secret.
  returned: always
  type: str
registry:
  description: The registry the Secret authenticates to.
  returned: always
  type: str
  sample: 127.0.0.1:5000
checksum:
  description: sha256 of the manifest file's content (changes when the credentials change).
  returned: always
  type: str
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.velocity.platform.plugins.module_utils.common.files import (
    atomic_write,
    file_state,
    needs_write,
)
from ansible_collections.velocity.platform.plugins.module_utils.common.paths import PathRefused, check_secret_file
from ansible_collections.velocity.platform.plugins.module_utils.image.registry import (
    pull_secret_manifest,
    pull_secret_problem,
    render_manifest,
    scrub,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            name=dict(type="str", required=True),
            namespace=dict(type="str", required=True),
            registry=dict(type="str", required=True),
            username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            labels=dict(type="dict", default={}),
            annotations=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problem = pull_secret_problem(p["name"], p["namespace"], p["registry"], p["username"], p["password"])
    if problem:
        module.fail_json(msg=problem)
    try:
        check_secret_file("dest", p["dest"])
    except PathRefused as exc:
        module.fail_json(msg=str(exc))
    manifest = pull_secret_manifest(p["name"], p["namespace"], p["registry"], p["username"], p["password"],
                                    p["labels"], p["annotations"])
    content = render_manifest(manifest)
    before, _mode = file_state(p["dest"])
    changed = needs_write(p["dest"], content, 0o600)
    if changed and not module.check_mode:
        try:
            atomic_write(p["dest"], content, 0o600)
        except OSError as exc:
            module.fail_json(msg=scrub(f"cannot write dest {p['dest']}: {exc.strerror or exc} (check the directory is "
                                       "writable)", [p["password"]]))
    after = hashlib.sha256(content).hexdigest()
    out = dict(changed=changed, path=os.path.abspath(p["dest"]), name=p["name"], namespace=p["namespace"],
               registry=p["registry"], checksum=after)
    if module._diff:
        out["diff"] = {"before": {"checksum": before or ""}, "after": {"checksum": after}}
    module.exit_json(**out)


if __name__ == "__main__":
    main()
