#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: manifest_apply
short_description: Server-side apply a manifest set in Argo CD sync-wave order, run its hooks, wait, roll back on failure
version_added: 0.1.0
description:
  - Reads Kubernetes objects from O(src) files and O(definitions), injects O(annotations) into every object
    and O(pod_annotations) into every pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob),
    and deploys them the way Argo CD syncs an application.
  - B(Validation first.) Every object is sent as a server-side dry run (server-side apply with C(dryRun=All); hook
    objects as a dry-run create) before anything changes. If any is rejected (schema, admission, field-manager
    conflict), the module fails listing every rejected object and B(nothing is changed).
  - B(Sets that create what they use.) A set may carry its own Namespace, CustomResourceDefinitions and the objects
    inside them, as most upstream install files do (and as C(kubectl apply -f) accepts). Objects in a Namespace or of
    a kind that the same set creates cannot be dry-run before it exists, so the order is - every other object
    (the Namespaces and CRDs included) passes its dry run first; then the new Namespaces and CRDs are created (each
    CRD waited for until C(Established)); then the waiting objects are dry-run; only then does anything else change.
    Where the all-or-nothing promise cannot hold - a waiting object that then fails its dry run - the module fails
    naming it and the Namespaces and CRDs it created (they are kept), and nothing else has changed. Argo CD does the
    same with C(SkipDryRunOnMissingResource=true) for custom resources and C(CreateNamespace=true) for the
    application's namespace, except that it applies the rest of the wave without a second dry run.
  - B(Argo CD side by side.) When a live object is managed by Argo CD (it carries the
    C(argocd.argoproj.io/tracking-id) annotation, or its fields are owned by the C(argocd-controller) field
    manager), the module fails before changing anything and names the Application, instead of fighting its
    self-heal. O(force=true) is the explicit override. Argo CD's default label tracking
    (C(app.kubernetes.io/instance) alone) is not taken as proof, since Helm sets the same label.
  - B(Order.) Objects are grouped by the C(argocd.argoproj.io/sync-wave) annotation (default V(0)), lowest first;
    inside a wave by Argo CD's kind order (Namespace, ServiceAccount, Secret, ConfigMap, ..., Service, Deployment, Job).
    Each wave's Deployments, StatefulSets, DaemonSets and Jobs must be healthy before the next wave is applied.
  - B(Hooks.) Objects annotated C(argocd.argoproj.io/hook=PreSync) run to completion before any ordinary object
    changes; C(Sync) hooks run in their own wave, after that wave's ordinary objects and before the next wave
    (so a migration Job can read a ConfigMap of an earlier wave and finish before the Deployment of a later one,
    as Argo CD orders them; they are created, never server-side applied, since a Job's template is immutable);
    C(PostSync) hooks run after the rollout. C(argocd.argoproj.io/hook-delete-policy) is honoured
    (V(BeforeHookCreation), the default, deletes a previous run first; V(HookSucceeded) and V(HookFailed) delete
    the hook afterwards). With O(run_hooks=auto), hooks run only when an ordinary object changes, so re-applying
    the same input runs nothing and reports C(changed=false).
  - B(SyncFail hooks.) Objects annotated C(argocd.argoproj.io/hook=SyncFail) run when a sync that had changed
    something fails (a failed rollout after its rollback, a failed hook, an interrupted apply), as Argo CD runs them;
    their outcome is added to the failure message. A set rejected by its dry run changed nothing, so no SyncFail hook
    runs then (Argo CD would run them, since for it the sync operation failed).
  - B(Apply.) Server-side apply (C(application/apply-patch+yaml)) under O(field_manager), without O(force) by default.
    A field-manager conflict names the object, each field and the manager that owns it.
  - B(Wait.) A Deployment fails fast when a pod of its new ReplicaSet (the C(pod-template-hash) of the revision
    being rolled out; older revisions' pods never count) waits for a reason that does not clear by itself
    (C(ErrImagePull), C(ImagePullBackOff), C(InvalidImageName), C(CreateContainerConfigError), C(ErrImageNeverPull)),
    or is in C(CrashLoopBackOff) after it has restarted 2 times; the message names the pod, its reason, the last exit
    code and the kubelet's latest Warning events for it (the pull error such as C(401 Unauthorized) or C(not found),
    the back-off). A readiness that never passes ends when the C(Progressing) condition turns V(False) with reason
    C(ProgressDeadlineExceeded) (set C(progressDeadlineSeconds) in the manifest), and the message carries the
    readiness probe's failure event. Jobs fail fast on a C(Failed) condition. A hook Job whose pod waits
    for a reason that does not clear by itself (C(CreateContainerConfigError), C(ErrImagePull), C(ImagePullBackOff),
    C(InvalidImageName), C(ErrImageNeverPull)) fails at once with the pod's reason and message; a hook that times
    out or fails reports its pods' waiting or terminated states.
  - B(Rollback.) When a rollout fails (progress deadline, O(wait_timeout), a failed Sync or PostSync hook), each Deployment
    this run changed is rolled back to the pod template of the revision that was live before, through server-side
    apply under the same field manager, and waited for. The failure reports the revision before, the failed revision
    and the revision after the rollback (the controller renumbers the restored template).
  - B(Interrupted.) If the API server stops answering (or refuses a change) after validation passed, the module
    fails saying which objects were applied (with their action), which one was in flight, which were not applied
    and which hooks ran; nothing is rolled back then. Every API call has a 60 s deadline, so a hung API server
    fails the task instead of hanging it. Run the task again once the API answers; applied objects stay unchanged.
  - B(Changed.) C(changed) is true only when an object's stored content changed (its spec, data, labels or
    annotations; not the API server's own bookkeeping such as C(resourceVersion) or C(managedFields)) or a hook ran.
  - B(Secrets.) Values of Secret objects (C(data) and C(stringData), raw and decoded) are registered as no_log values,
    masked in diffs and never returned.
  - Templates are rendered by Ansible before the module sees them, for example
    C(definitions="{{ lookup('ansible.builtin.template', 'k8-deployments.yaml.j2') | from_yaml_all | list }}").
author:
  - Velocity platform team (@velocity)
options:
  src:
    description:
      - YAML files (multi-document allowed, C(List) kinds flattened) on the host the module runs on.
    type: list
    elements: path
    default: []
  definitions:
    description:
      - Objects given inline, after those of O(src). A list of mappings, one mapping, or a YAML string
        (multi-document allowed).
    type: raw
  namespace:
    description:
      - Namespace for namespaced objects that name none. Cluster-scoped objects never get one.
      - Must be a DNS-1123 label (at most 63 characters, lowercase letters, digits and C(-)); checked before the
        API server is contacted, like every object's C(metadata.name) and C(metadata.namespace).
    type: str
    default: default
  annotations:
    description: Annotations set on every object (overwriting the manifest's value), for example provenance.
    type: dict
    default: {}
  pod_annotations:
    description: Annotations set on every pod template, for example C(velocity.dev/image-digest).
    type: dict
    default: {}
  labels:
    description: Labels set on every object's metadata (not on selectors or pod templates).
    type: dict
    default: {}
  force:
    description:
      - Take over fields that another field manager owns, instead of failing on the conflict.
      - Also the override for live objects that Argo CD manages (otherwise refused before any change).
    type: bool
    default: false
  wait:
    description: Wait for each wave's workloads (Deployment, StatefulSet, DaemonSet, Job, Pod) to be ready or complete.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for one workload; a rollout still incomplete then counts as failed.
    type: int
    default: 300
  hook_timeout:
    description: Seconds to wait for one hook Job to complete.
    type: int
    default: 300
  poll_interval:
    description:
      - Longest pause in seconds between two status reads while waiting.
      - The first pauses are shorter (0.25 s, growing by half each time), so a quick rollout is seen at once.
    type: float
    default: 1.0
  run_hooks:
    description:
      - V(auto) runs PreSync/Sync/PostSync hooks only when an ordinary object changes; V(always) on every run
        (as an Argo CD sync does); V(never) skips them (their dry-run validation still happens).
      - V(auto) differs from Argo CD, which runs the hooks on every sync; it makes a re-run of the same release
        change nothing. SyncFail hooks run whenever a sync that changed something fails, except with V(never).
    type: str
    choices: [auto, always, never]
    default: auto
  rollback_on_failure:
    description:
      - Roll changed Deployments back to their previous revision when the rollout fails, then wait until that
        revision is available again; the whole release goes back when the templates name content-addressed
        ConfigMaps and Secrets (the deploy role does).
      - Refused, with the downgrade to run first, when the failed revision's pod template says its migration left a
        schema the previous revision cannot run on (annotations C(velocity.dev/schema-head) and
        C(velocity.dev/schema-window), which the deploy role sets from the image's C(velocity-app schema-info));
        templates without them are not checked. The Deployment then stays where it failed.
    type: bool
    default: true
extends_documentation_fragment:
  - velocity.platform.k8s
  - velocity.platform.k8s.attributes
seealso:
  - module: velocity.platform.rollout_undo
  - name: Argo CD sync phases and waves
    description: The ordering this module reproduces.
    link: https://argo-cd.readthedocs.io/en/stable/user-guide/sync-waves/
  - name: Server-side apply
    description: Field management and conflicts.
    link: https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

EXAMPLES = r"""
- name: Deploy the rendered manifests with provenance on the pod template
  velocity.platform.manifest_apply:
    kubeconfig: /tmp/velocity/k8s/kubeconfig
    namespace: velocity
    src:
      - /srv/release/k8-deployments.yaml
    pod_annotations:
      velocity.dev/image-digest: "sha256:0123..."
      velocity.dev/sbom-sha256: "4a5b..."
    wait_timeout: 180
  register: deploy

- name: Validate only (server-side dry run, nothing changes)
  velocity.platform.manifest_apply:
    namespace: velocity
    definitions: "{{ lookup('ansible.builtin.template', 'k8-deployments.yaml.j2') | from_yaml_all | list }}"
  check_mode: true
  diff: true

- name: Apply one inline object, taking over fields owned by kubectl
  velocity.platform.manifest_apply:
    namespace: velocity
    force: true
    definitions:
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: velocity-app
      data:
        LOG_LEVEL: info
"""

RETURN = r"""
objects:
  description: Every ordinary object, in the order applied, with what happened to it.
  returned: always
  type: list
  elements: dict
  sample:
    - {ref: "ConfigMap velocity/velocity-app", kind: ConfigMap, name: velocity-app, namespace: velocity, wave: -1, action: unchanged}
    - {ref: "Deployment velocity/velocity-app", kind: Deployment, name: velocity-app, namespace: velocity, wave: 1, action: configured}
hooks:
  description: Hooks run, with phase, delete policy, result and duration.
  returned: always
  type: list
  elements: dict
  sample:
    - {ref: "Job velocity/velocity-migrate", phase: PreSync, wave: 0, delete_policy: [BeforeHookCreation], result: succeeded, duration_s: 2.1}
hooks_run:
  description: Whether the hooks were run (see O(run_hooks)).
  returned: success
  type: bool
deployments:
  description: Revision of each Deployment before and after the run (after a rollback, the renumbered revision).
  returned: always
  type: dict
  sample: {"Deployment velocity/velocity-app": {revision_before: 2, revision_after: 3}}
rollback:
  description: One entry per Deployment rolled back after a failed rollout.
  returned: on a failed rollout
  type: list
  elements: dict
  sample:
    - deployment: Deployment velocity/velocity-app
      restored_revision: 2
      failed_revision: 3
      revision_after_rollback: 4
      state: Available
      duration_s: 1.03
failure:
  description: Why the rollout failed (progress deadline, timeout, failed hook) with the pods' reasons, or the API
    error that interrupted the deploy.
  returned: on a failed rollout or an interrupted deploy
  type: str
applied:
  description: Objects applied before the API server stopped answering or refused a change.
  returned: when the deploy was interrupted after validation
  type: list
  elements: str
  sample: [ConfigMap default/velocity-app-config]
not_applied:
  description: Objects of the input that were not applied because the deploy was interrupted.
  returned: when the deploy was interrupted after validation
  type: list
  elements: str
  sample: [Deployment default/velocity-app, Service default/velocity-app]
in_flight:
  description: The object whose apply request was under way when the deploy was interrupted (its state is unknown
    when the connection failed), comma-separated when several of one sync wave were sent at once, or V(null).
  returned: when the deploy was interrupted after validation
  type: str
created:
  description: The Namespaces and CRDs of the set that were created before an object waiting for them failed its
    dry run (they are kept; nothing else was changed).
  returned: when an object in a new Namespace or of a new kind failed its dry run
  type: list
  elements: str
  sample: [Namespace shop, CustomResourceDefinition widgets.example.com]
argocd_managed:
  description: Live objects of the set that Argo CD manages, each with its Application; nothing was changed.
  returned: when the task was refused because Argo CD manages live objects (without O(force))
  type: list
  elements: str
  sample: ["ConfigMap shop/settings (Application shop)"]
validation_errors:
  description: Messages of every object the server-side dry run rejected.
  returned: when validation failed
  type: list
  elements: str
conflicts:
  description: Field-manager conflicts found by the dry run.
  returned: when validation failed
  type: list
  elements: dict
  sample: [{field: .spec.replicas, manager: kubectl-edit, api_version: apps/v1}]
timings:
  description:
    - Seconds spent in the server-side dry run of every object (C(dry_run_s)), applying and waiting
      (C(apply_and_rollout_s)), and in total (C(total_s)).
  returned: always
  type: dict
  sample: {dry_run_s: 0.05, apply_and_rollout_s: 4.2, total_s: 7.3}
"""

import os

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem
from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import Deployer, DeployFailed, prepare
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import (
    K8sApiError,
    K8sClient,
    k8s_module,
)
from ansible_collections.velocity.platform.plugins.module_utils.k8s.objects import (
    ManifestError,
    check_unique,
    flatten,
    load_documents,
    secret_values,
)


def read_objects(module):
    objs = []
    for path in module.params["src"]:
        if not os.path.isfile(path):
            raise ManifestError(f"src {path} does not exist or is not a file")
        with open(path, "rb") as handle:
            objs.extend(load_documents(to_text(handle.read(), errors="surrogate_or_strict"), path))
    definitions = module.params["definitions"]
    if isinstance(definitions, str):
        objs.extend(load_documents(definitions, "definitions"))
    elif isinstance(definitions, dict):
        objs.extend(flatten([definitions], "definitions"))
    elif isinstance(definitions, list):
        objs.extend(flatten(definitions, "definitions"))
    elif definitions is not None:
        raise ManifestError("definitions must be a list of objects, an object or a YAML string")
    if not objs:
        raise ManifestError("no object given: set src and/or definitions")
    check_unique(objs)
    return objs


def main():
    argument_spec = dict(
        src=dict(type="list", elements="path", default=[]),
        definitions=dict(type="raw"),
        namespace=dict(type="str", default="default"),
        annotations=dict(type="dict", default={}),
        pod_annotations=dict(type="dict", default={}),
        labels=dict(type="dict", default={}),
        force=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        hook_timeout=dict(type="int", default=300),
        poll_interval=dict(type="float", default=1.0),
        run_hooks=dict(type="str", choices=["auto", "always", "never"], default="auto"),
        rollback_on_failure=dict(type="bool", default=True),
        field_manager=dict(type="str", default="velocity"),
    )
    module = k8s_module(argument_spec, supports_check_mode=True)
    params = module.params
    problem = name_problem(params["namespace"], "namespace", label=True)
    if problem:
        module.fail_json(msg=problem)
    try:
        objs = read_objects(module)
    except ManifestError as exc:
        module.fail_json(msg=to_text(exc))
    for obj in objs:
        module.no_log_values.update(secret_values(obj))

    client = None
    try:
        client = K8sClient.from_params(params, field_manager=params["field_manager"])
        objs = prepare(client, objs, params["namespace"], params["annotations"], params["pod_annotations"],
                       params["labels"])
        deployer = Deployer(
            client, force=params["force"], wait=params["wait"], wait_timeout=params["wait_timeout"],
            hook_timeout=params["hook_timeout"], run_hooks=params["run_hooks"],
            rollback_on_failure=params["rollback_on_failure"], check_mode=module.check_mode,
            want_diff=module._diff, poll_interval=params["poll_interval"], log=module.debug,
        )
        result = deployer.run(objs)
    except ManifestError as exc:
        module.fail_json(msg=to_text(exc))
    except K8sApiError as exc:
        module.fail_json(msg=exc.message, conflicts=exc.conflicts)
    except DeployFailed as exc:
        failed = dict(exc.result)
        failed.pop("diff", None)
        module.fail_json(msg=exc.message, **failed)
    finally:
        if client is not None:
            client.close()
    diff = result.pop("diff", [])
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
