#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_config_prune
short_description: Delete the content-addressed ConfigMaps and Secrets of an app that no revision names any more
version_added: 0.2.0
description:
  - The deploy role names the app's ConfigMap and Secret by a hash of their data and labels them
    C(velocity.dev/release-config=APP), so every ReplicaSet of the Deployment (every revision in its history)
    names its own configuration, and a rollback of the pod template restores it.
  - This module deletes those labelled ConfigMaps and Secrets of O(namespace) that no Deployment, ReplicaSet,
    Job or Pod of the namespace names (C(envFrom), C(env.valueFrom), volumes, projected volumes), except O(keep).
    The Deployment controller keeps C(revisionHistoryLimit) old ReplicaSets, so a configuration lives exactly as
    long as a revision that can be rolled back to names it.
  - Never deletes an object some ReplicaSet still names, nor an object without the label.
  - The deploy role runs it after a successful rollout (C(deploy_prune_configs)).
  - In check mode nothing is deleted; C(changed) and RV(pruned) say what would be.
author:
  - Velocity platform team (@velocity)
options:
  namespace:
    description: Namespace to prune in, a DNS-1123 label.
    type: str
    required: true
  app:
    description: Value of the C(velocity.dev/release-config) label (the deploy role's C(deploy_app_name)).
    type: str
    required: true
  keep:
    description: Names never deleted (for example the configuration just applied, before its pods exist).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - velocity.platform.k8s
  - velocity.platform.k8s.attributes
attributes:
  diff_mode:
    description: Lists the labelled objects before and after.
    support: full
seealso:
  - module: velocity.platform.manifest_apply
  - module: velocity.platform.rollout_undo
"""

EXAMPLES = r"""
- name: Prune configurations past the revision history
  velocity.platform.release_config_prune:
    kubeconfig: /tmp/velocity/k8s/kubeconfig
    namespace: velocity
    app: velocity-app
    keep: [velocity-app-3f9a0c1b2d, velocity-app-secrets-8c1d2e3f4a]
"""

RETURN = r"""
pruned:
  description: Objects deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: dict
  sample: [{kind: ConfigMap, name: velocity-app-0c1d2e3f4a}]
kept:
  description: Labelled objects kept (a workload names them, or O(keep) lists them).
  returned: always
  type: list
  elements: dict
  sample: [{kind: Secret, name: velocity-app-secrets-8c1d2e3f4a}]
"""

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import (
    K8sApiError,
    K8sClient,
    k8s_module,
)
from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import prune_candidates


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        app=dict(type="str", required=True),
        keep=dict(type="list", elements="str", default=[]),
        field_manager=dict(type="str", default="velocity"),
    )
    module = k8s_module(argument_spec, supports_check_mode=True)
    params = module.params
    problem = name_problem(params["namespace"], "namespace", label=True) or name_problem(params["app"], "app",
                                                                                         label=True)
    if problem:
        module.fail_json(msg=problem)
    client = None
    result = dict(changed=False, pruned=[], kept=[])
    try:
        client = K8sClient.from_params(params, field_manager=params["field_manager"])
        to_delete, kept = prune_candidates(client, params["namespace"], params["app"], keep=params["keep"])
        result.update(changed=bool(to_delete), pruned=to_delete, kept=kept)
        if module._diff and to_delete:
            labels = dict((id(e), f"{e['kind']} {params['namespace']}/{e['name']}") for e in to_delete + kept)
            header = f"release configurations of {params['app']}"
            result["diff"] = {
                "before_header": header,
                "after_header": header,
                "before": "\n".join(sorted(labels[id(e)] for e in to_delete + kept)) + "\n",
                "after": "\n".join(sorted(labels[id(e)] for e in kept)) + "\n",
            }
        if not module.check_mode:
            for entry in to_delete:
                client.delete({"apiVersion": "v1", "kind": entry["kind"],
                               "metadata": {"name": entry["name"], "namespace": params["namespace"]}})
    except K8sApiError as exc:
        module.fail_json(msg=to_text(exc.message), **result)
    finally:
        if client is not None:
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
