#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_undo
short_description: Roll a Deployment back to its previous or a chosen revision and wait until it is Available
version_added: 0.1.0
description:
  - Does what C(kubectl rollout undo deployment/NAME [--to-revision=N]) does, then waits.
  - The pod template of the ReplicaSet of the target revision, without its C(pod-template-hash) label, becomes the
    Deployment's template. When the Deployment was deployed by server-side apply under O(field_manager), the
    rollback is applied under the same manager (every other field it owns kept), so the next deploy of a
    manifest meets no field-manager conflict; otherwise a JSON patch replaces the template, as kubectl does.
  - O(to_revision=0) means the newest revision older than the current one.
  - Reports C(changed=false) when the Deployment already runs the target revision's template.
  - A revision that does not exist fails with the list of revisions the cluster keeps (C(revisionHistoryLimit)).
  - The controller gives the restored template a new revision number (the old one disappears from the history);
    the module returns both.
  - In check mode, the target is resolved and C(changed) predicted (the credential check below included);
    nothing is patched.
  - B(The whole release comes back.) The deploy role names the ConfigMap and the Secret by a hash of their data
    (C(velocity.dev/release-config) label) and keeps them while a revision names them, so restoring a revision's
    pod template also restores the configuration and the credentials that revision ran with.
  - B(Dead credentials are refused, not restored.) Before changing anything the module reads the Secrets the
    target revision names. When one is gone, or its recorded Vault lease (annotation
    C(velocity.dev/vault-lease-expires-at), written by the deploy role from the secrets stage's lease) has
    expired, the task fails naming the revision, the Secret and the lease, and says what to do (deploy that
    release again, so that the secrets stage issues fresh credentials). Renewing is not possible past a lease's
    expiry, and re-issuing here would need the Vault login and the URL template of the secrets stage, so the
    module refuses. A lease revoked before its expiry is not visible in the cluster; the rollback role looks it
    up in Vault first when given a Vault login (see its README). O(allow_expired_credentials=true) overrides.
author:
  - Velocity platform team (@velocity)
options:
  name:
    description:
      - Name of the Deployment, a DNS-1123 subdomain (at most 253 lowercase letters, digits, C(-) and C(.)).
      - An invalid name fails the task before the API server is contacted.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Deployment, a DNS-1123 label (at most 63 lowercase letters, digits and C(-)).
      - An invalid namespace fails the task before the API server is contacted.
    type: str
    default: default
  to_revision:
    description: Revision to go back to; V(0) for the previous one.
    type: int
    default: 0
  wait:
    description: Wait until the rolled-back Deployment is Available with every replica updated.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 300
  poll_interval:
    description:
      - Longest pause in seconds between two status reads while waiting.
      - The first pauses are shorter (0.25 s, growing by half each time), so a quick rollout is seen at once.
    type: float
    default: 1.0
  force:
    description: Take over template fields owned by another field manager (a rollback must win, hence the default).
    type: bool
    default: true
  allow_expired_credentials:
    description:
      - Restore the target revision even when a Secret it names records an expired Vault lease (or is gone).
      - Only when you know the credentials still work (the lease was renewed past the recorded expiry).
    type: bool
    default: false
extends_documentation_fragment:
  - velocity.platform.k8s
  - velocity.platform.k8s.attributes
attributes:
  diff_mode:
    description: Returns the pod template before and after.
    support: full
seealso:
  - module: velocity.platform.manifest_apply
  - name: kubectl rollout undo
    description: The command this module reproduces.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_undo/
"""

EXAMPLES = r"""
- name: Back to the previous revision
  velocity.platform.rollout_undo:
    kubeconfig: /tmp/velocity/k8s/kubeconfig
    namespace: velocity
    name: velocity-app

- name: Back to revision 2, and show what was there
  velocity.platform.rollout_undo:
    namespace: velocity
    name: velocity-app
    to_revision: 2
  register: undo

- name: Print the history
  ansible.builtin.debug:
    var: undo.history
"""

RETURN = r"""
revision_before:
  description: Revision running before the rollback.
  returned: success
  type: int
  sample: 3
restored_revision:
  description: Revision whose template was restored.
  returned: success
  type: int
  sample: 2
revision:
  description: Revision running now (the controller renumbers the restored template, so 4 after 3 -> 2).
  returned: success
  type: int
  sample: 4
images:
  description: Container images of the template now running.
  returned: success
  type: list
  elements: str
history:
  description: Revisions kept by the cluster after the rollback, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - {revision: 1, replicaset: velocity-app-5d9c7, images: ["velocity/app:0.1.0"], replicas: 0, current: false,
       change_cause: null, provenance: {"velocity.dev/source-revision": "abc123"}, created: "2026-01-01T00:00:00Z"}
duration_s:
  description: Seconds the rollback and the wait took.
  returned: success
  type: float
credentials:
  description:
    - The Vault leases recorded on the Secrets the target revision names (no credential values).
    - C(expires_at) is the annotation as written by the deploy role (RFC 3339, UTC).
  returned: success
  type: list
  elements: dict
  sample: [{secret: velocity-app-secrets-5f0c2a91de, exists: true, lease_id: "database/creds/velocity-app/AbC",
            expires_at: "2026-12-03T08:00:00Z"}]
"""

import time

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import (
    K8sApiError,
    K8sClient,
    k8s_module,
)
from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import (
    RolloutError,
    credential_problem,
    history,
    lease_records,
    owned_replicasets,
    pick_target,
    revision_of,
    same_template,
    template_without_hash,
    undo,
)
from ansible_collections.velocity.platform.plugins.module_utils.k8s.waiter import Waiter, WaitFailed, WaitTimeout


def images_of(template):
    return [c.get("image") for c in ((template or {}).get("spec") or {}).get("containers") or []]


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"),
        to_revision=dict(type="int", default=0),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=1.0),
        force=dict(type="bool", default=True),
        allow_expired_credentials=dict(type="bool", default=False),
        field_manager=dict(type="str", default="velocity"),
    )
    module = k8s_module(argument_spec, supports_check_mode=True)
    params = module.params
    # Bad input fails here, before the API server is contacted.
    problem = name_problem(params["name"], "name") or name_problem(params["namespace"], "namespace", label=True)
    if problem:
        module.fail_json(msg=problem)
    if params["to_revision"] < 0:
        module.fail_json(msg=f"to_revision must be 0 (previous) or a revision number, not {params['to_revision']}")
    for field in ("wait_timeout", "poll_interval"):
        if params[field] <= 0:
            module.fail_json(msg=f"{field} must be a positive number of seconds, not {params[field]}")
    label = f"Deployment {params['namespace']}/{params['name']}"
    started = time.monotonic()
    client = None
    try:
        client = K8sClient.from_params(params, field_manager=params["field_manager"])
        deployment = client.get("apps/v1", "Deployment", params["name"], params["namespace"])
        if deployment is None:
            module.fail_json(msg=f"{label} does not exist")
        before_rev = revision_of(deployment)
        check_credentials = not params["allow_expired_credentials"]
        if module.check_mode:
            replicasets = owned_replicasets(client, deployment)
            target = pick_target(replicasets, deployment, params["to_revision"])
            changed = not same_template(target["spec"]["template"], deployment["spec"]["template"])
            if changed and check_credentials:
                problem = credential_problem(client, deployment, target)
                if problem:
                    raise RolloutError(problem)
            module.exit_json(changed=changed, revision_before=before_rev, restored_revision=revision_of(target),
                             revision=before_rev, images=images_of(deployment["spec"]["template"]),
                             history=history(client, deployment), duration_s=0.0,
                             credentials=lease_records(client, params["namespace"], target["spec"]["template"]))
        changed, target, _rs = undo(client, deployment, to_revision=params["to_revision"], force=params["force"],
                                    check_credentials=check_credentials)
        current = client.get("apps/v1", "Deployment", params["name"], params["namespace"])
        if params["wait"]:
            waiter = Waiter(timeout=params["wait_timeout"], interval=params["poll_interval"])
            current = waiter.wait("Deployment",
                                  lambda: client.get("apps/v1", "Deployment", params["name"], params["namespace"]),
                                  label)
        result = dict(
            changed=changed,
            revision_before=before_rev,
            restored_revision=revision_of(target),
            revision=revision_of(current),
            images=images_of(current["spec"]["template"]),
            history=history(client, current),
            duration_s=round(time.monotonic() - started, 3),
            credentials=lease_records(client, params["namespace"], target["spec"]["template"]),
        )
        if module._diff and changed:
            result["diff"] = {
                "before_header": label + f" spec.template (revision {before_rev})",
                "after_header": label + f" spec.template (revision {revision_of(target)})",
                "before": template_without_hash(deployment["spec"]["template"]),
                "after": template_without_hash(target["spec"]["template"]),
            }
    except RolloutError as exc:
        module.fail_json(msg=to_text(exc))
    except K8sApiError as exc:
        module.fail_json(msg=exc.message, conflicts=exc.conflicts)
    except (WaitFailed, WaitTimeout) as exc:
        module.fail_json(msg=f"rollback applied but the Deployment did not become Available: {exc}", changed=True)
    finally:
        if client is not None:
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
