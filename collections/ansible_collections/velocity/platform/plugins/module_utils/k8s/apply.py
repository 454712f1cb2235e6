# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deploy a manifest set the way Argo CD syncs it, from Ansible:

0. live objects that Argo CD manages (its tracking annotation, or fields owned by its
   field manager) are refused before anything changes, unless ``force`` is set;
1. every object is validated by a server-side dry run (apply, or create for hooks)
   before anything changes, so an invalid set changes nothing. The exception is a set
   that brings what it uses: objects in a Namespace, or of a kind, that the same set
   creates cannot be dry-run before their Namespace or CRD exists. They are checked
   locally first; after everything else passed its dry run, the Namespaces and CRDs
   are created (each CRD waited for until ``Established``), then those objects are
   dry-run; if one fails, the Namespaces and CRDs created so far are reported and
   nothing else has changed;
2. PreSync hooks run to completion (only when something changes, unless told otherwise);
3. ordinary objects are server-side applied wave by wave, each wave healthy before the next;
   a Sync hook runs (recreated, waited for) in its wave, after that wave's objects, so it can
   use the objects of earlier waves and the next wave waits for it (Argo CD's order);
4. PostSync hooks run after the rollout;
   a hook Job whose pod waits for a reason that never clears by itself (CreateContainerConfigError,
   ErrImagePull, ImagePullBackOff, ...) fails at once with the pod's reason and message;
5. a Deployment whose rollout fails (progress deadline, timeout, failed Sync or PostSync hook)
   is rolled back to the revision that was live before, and both revisions are reported;
6. when a sync that had changed something fails, its SyncFail hooks run, as Argo CD runs them.
"""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import PARALLEL_REQUESTS, K8sApiError
from ansible_collections.velocity.platform.plugins.module_utils.k8s.objects import (
    delete_policies,
    for_diff,
    hook_phase,
    inject_annotations,
    key,
    normalise,
    plan,
    ref,
    sort_key,
    sync_wave,
    waves,
)
from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import (
    RolloutError,
    owned_replicasets,
    revision_of,
    same_template,
    undo,
)
from ansible_collections.velocity.platform.plugins.module_utils.k8s.schema_window import schema_window_refusal
from ansible_collections.velocity.platform.plugins.module_utils.k8s.waiter import (
    PREDICATES,
    RolloutProbe,
    Waiter,
    WaitFailed,
    WaitTimeout,
    pod_container_states,
    pods_report,
    pulling_failed,
)


class DeployFailed(Exception):
    """The deploy failed; `result` holds what happened so far (returned with the failure)."""

    def __init__(self, message, result):
        super().__init__(message)
        self.message = message
        self.result = result


CRD_KIND = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
ARGOCD_TRACKING = "argocd.argoproj.io/tracking-id"
ARGOCD_MANAGERS = ("argocd-controller", "argocd-application-controller")


def set_kinds(objs):
    """{(apiVersion, kind): namespaced} for every kind the CRDs of this set define."""
    kinds = {}
    for obj in objs:
        if (obj.get("apiVersion"), obj.get("kind")) != CRD_KIND:
            continue
        spec = obj.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            kinds[(f"{group}/{version.get('name')}", kind)] = spec.get("scope", "Namespaced") == "Namespaced"
    return kinds


def prepare(client, objs, namespace, annotations=None, pod_annotations=None, labels=None):
    """Inject annotations/labels and settle each object's namespace.

    Discovery says whether a kind is namespaced; for a kind that a CRD of the same set
    defines, the CRD's ``scope`` says it (the API server does not serve it yet).
    """
    defined = set_kinds(objs)
    out = []
    for obj in objs:
        obj = inject_annotations(obj, annotations, pod_annotations, labels)
        meta = obj["metadata"]
        kind = (obj["apiVersion"], obj["kind"])
        if kind in defined and not client.serves(*kind):
            namespaced = defined[kind]
        else:
            namespaced = client.namespaced(obj)
        if namespaced:
            meta["namespace"] = meta.get("namespace") or namespace
        else:
            meta.pop("namespace", None)
        out.append(obj)
    return out


def argocd_owner(live):
    """The Argo CD Application managing ``live``, or None: its tracking annotation or its field manager."""
    if not live:
        return None
    meta = live.get("metadata") or {}
    tracking = (meta.get("annotations") or {}).get(ARGOCD_TRACKING)
    if tracking:
        return tracking.split(":", 1)[0] or "unknown"
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") in ARGOCD_MANAGERS:
            return (meta.get("labels") or {}).get("app.kubernetes.io/instance") or "unknown"
    return None


_NOT_STARTED = object()


def concurrently(func, items, workers=PARALLEL_REQUESTS, stop_on_error=False):
    """[(result, error)] of func(item) for each item, in the order of ``items``.

    Up to ``workers`` calls at once (the API client's connection pool holds as many
    connections). A K8sApiError is caught per item, any other exception propagates. With
    ``stop_on_error``, an item not yet started when a call has failed is not started:
    its result is ``_NOT_STARTED``. One item, or one worker, runs in the caller's thread.
    """
    items = list(items)
    failed = threading.Event()

    def one(item):
        if stop_on_error and failed.is_set():
            return _NOT_STARTED, None
        try:
            return func(item), None
        except K8sApiError as exc:
            failed.set()
            return None, exc

    if len(items) <= 1 or workers <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(one, items))


def first_error(outcomes):
    """Raise the first K8sApiError of ``concurrently``'s outcomes, in input order."""
    for _result, error in outcomes:
        if error is not None:
            raise error


def pod_problems(client, namespace, selector, limit=5):
    """Short reasons why the pods behind `selector` are not ready (for failure messages)."""
    if not selector:
        return []
    label_selector = ",".join(f"{name}={value}" for name, value in sorted(selector.items()))
    try:
        pods = client.list("v1", "Pod", namespace=namespace, label_selector=label_selector)
    except K8sApiError:
        return []
    problems = []
    for pod in pods:
        status = pod.get("status") or {}
        reasons = []
        restarts = dict((cs.get("name"), cs.get("restartCount", 0)) for cs in status.get("containerStatuses") or [])
        for container, state, reason, message in pod_container_states(pod):
            if state == "waiting":
                detail = f": {message}" if message else ""
                reasons.append(f"{container} {reason}{detail} (restarts {restarts.get(container, 0)})")
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") != "True":
                why = cond.get("message") or cond.get("reason") or "unknown"
                reasons.append(f"not Ready: {why}")
        if reasons:
            problems.append(f"pod {pod['metadata']['name']}: {'; '.join(reasons)}")
        if len(problems) >= limit:
            break
    return problems


class Deployer:
    def __init__(self, client, force=False, wait=True, wait_timeout=300, hook_timeout=300, run_hooks="auto",
                 rollback_on_failure=True, check_mode=False, want_diff=False, poll_interval=1.0, log=None):
        self.client = client
        self.force = force
        self.wait = wait
        self.waiter = Waiter(timeout=wait_timeout, interval=poll_interval)
        self.hook_waiter = Waiter(timeout=hook_timeout, interval=poll_interval)
        self.run_hooks = run_hooks
        self.rollback_on_failure = rollback_on_failure
        self.check_mode = check_mode
        self.want_diff = want_diff
        self.log = log or (lambda msg: None)
        self.in_flight = None
        self._pre_applied = {}
        self.result = {
            "changed": False,
            "objects": [],
            "hooks": [],
            "deployments": {},
            "rollback": None,
            "diff": [],
            "timings": {},
        }

    # -- phases -----------------------------------------------------------------------------------

    def run(self, objs):
        started = time.monotonic()
        phases = plan(objs)
        # Sync hooks run in their wave (apply_waves), never applied like ordinary objects (a Job is immutable).
        sync_hooks = [obj for obj in phases["Sync"] if hook_phase(obj) == "Sync"]
        sync = [obj for obj in phases["Sync"] if hook_phase(obj) != "Sync"]
        hooks = phases["PreSync"] + sync_hooks + phases["PostSync"] + phases["SyncFail"]

        foundation = self.foundation(sync)
        deferred = self.deferred(sync + hooks, foundation)
        # Reads, dry runs and the applies of one wave go out concurrently (PARALLEL_REQUESTS at a time).
        readable = [obj for obj in sync if key(obj) not in deferred]
        self._resolve(readable)
        outcomes = concurrently(self.client.get_obj, readable)
        first_error(outcomes)
        live = dict((key(obj), None) for obj in sync)
        live.update((key(obj), found) for obj, (found, _error) in zip(readable, outcomes))
        self.refuse_argocd_managed(sync, live)
        self._deploy_index = dict((ref(obj), (obj, live[key(obj)])) for obj in sync if obj["kind"] == "Deployment")
        predicted = self.dry_run(sync, hooks, live, deferred)
        self.result["timings"]["dry_run_s"] = round(time.monotonic() - started, 3)

        changes = [entry for entry in predicted if entry["action"] != "unchanged"]
        run_hooks = self.run_hooks == "always" or (self.run_hooks == "auto" and bool(changes))
        self.result["hooks_run"] = run_hooks and bool(hooks)
        if self.want_diff:
            self.result["diff"] = [
                {"before_header": entry["ref"], "after_header": entry["ref"],
                 "before": for_diff(live[entry["key"]]) or {}, "after": for_diff(entry["dry_run"])}
                for entry in changes
            ]
        if self.check_mode:
            self.result["objects"] = [self._summary(entry) for entry in predicted]
            self.result["changed"] = bool(changes) or self.result["hooks_run"]
            self.result["timings"]["total_s"] = round(time.monotonic() - started, 3)
            return self.result

        for obj in sync:
            if obj["kind"] == "Deployment" and live[key(obj)] is not None:
                self.result["deployments"][ref(obj)] = {
                    "revision_before": revision_of(live[key(obj)]),
                    "revision_after": None,
                }

        try:
            try:
                if deferred:
                    self.lay_foundation(foundation, predicted, deferred, live)
                if run_hooks:
                    self.run_hook_phase(phases["PreSync"], "PreSync")
                self.apply_waves(sync, predicted, live, sync_hooks if run_hooks else ())
                if run_hooks:
                    self.run_hook_phase(phases["PostSync"], "PostSync")

                for obj in sync:
                    if obj["kind"] == "Deployment" and self.wait:
                        current = self.client.get_obj(obj)
                        self.result["deployments"].setdefault(ref(obj), {"revision_before": None})["revision_after"] = \
                            revision_of(current)
            except K8sApiError as exc:
                raise DeployFailed(self.interrupted(exc, sync), self.result) from None
        except DeployFailed as failure:
            if self.result["changed"] and phases["SyncFail"] and self.run_hooks != "never":
                failure.message += self.run_syncfail_hooks(phases["SyncFail"])
            raise
        self.result["timings"]["total_s"] = round(time.monotonic() - started, 3)
        return self.result

    def _resolve(self, objs):
        """Look each kind up in discovery once, here, so that concurrent calls only read the cache."""
        for api_kind in sorted(set((obj["apiVersion"], obj["kind"]) for obj in objs)):
            self.client.resource(*api_kind)

    # -- sets that create what they use ---------------------------------------------------------------

    def foundation(self, sync):
        """The Namespaces and CRDs of the set that are not live yet: {key: obj}."""
        out = {}
        for obj in sync:
            if obj["kind"] == "Namespace" or (obj["apiVersion"], obj["kind"]) == CRD_KIND:
                if self.client.get_obj(obj) is None:
                    out[key(obj)] = obj
        return out

    def deferred(self, objs, foundation):
        """{key: reason} for objects that cannot be dry-run before a Namespace or CRD of the set exists."""
        namespaces = set(o["metadata"]["name"] for o in foundation.values() if o["kind"] == "Namespace")
        kinds = set_kinds(foundation.values())
        out = {}
        for obj in objs:
            namespace = obj["metadata"].get("namespace")
            if (obj["apiVersion"], obj["kind"]) in kinds and not self.client.serves(obj["apiVersion"], obj["kind"]):
                out[key(obj)] = "its CustomResourceDefinition is created by this set"
            elif namespace in namespaces:
                out[key(obj)] = f"its Namespace {namespace} is created by this set"
        return out

    def lay_foundation(self, foundation, predicted, deferred, live):
        """Create the set's Namespaces and CRDs, then dry-run what waited for them."""
        created = []
        for obj in sorted(foundation.values(), key=lambda o: o["kind"] != "Namespace"):
            self.in_flight = ref(obj)
            after = self.client.apply(obj, force=self.force)
            self.in_flight = None
            created.append(ref(obj))
            self._pre_applied[key(obj)] = after
            self.result["changed"] = True
            if obj["kind"] == "CustomResourceDefinition":
                self.waiter.wait("CustomResourceDefinition", lambda o=obj: self.client.get_obj(o), ref(obj))
        self.client.forget_discovery()
        errors = []
        for entry in predicted:
            if entry["key"] not in deferred:
                continue
            try:
                entry["dry_run"] = self.client.apply(entry["obj"], dry_run=True, force=self.force)
            except K8sApiError as exc:
                errors.append(exc.message)
        if errors:
            self.result["created"] = created
            raise DeployFailed(
                f"{len(errors)} object(s) failed the server-side dry run after their Namespace or CRD was created: "
                f"{'; '.join(errors)}. Created so far (kept; remove them by hand if the set is abandoned): "
                f"{', '.join(created)}. Nothing else was changed.", self.result)

    def refuse_argocd_managed(self, sync, live):
        """Argo CD would undo our change at its next self-heal: refuse before changing anything."""
        if self.force:
            return
        owned = []
        for obj in sync:
            app = argocd_owner(live[key(obj)])
            if app:
                owned.append(f"{ref(obj)} (Application {app})")
        if owned:
            self.result["argocd_managed"] = owned
            raise DeployFailed(
                f"{len(owned)} live object(s) are managed by Argo CD: {'; '.join(owned)}. Nothing was changed. Change "
                "them through Argo CD (commit the rendered manifests, deploy_render_only=true), or set force=true to "
                "take them over (Argo CD's self-heal may then undo the change).", self.result)

    def run_syncfail_hooks(self, objs):
        """Run the SyncFail hooks after a failed sync; a note for the failure message."""
        notes = []
        for obj in objs:
            try:
                self.run_hook(obj, "SyncFail")
                notes.append(f"{ref(obj)} succeeded")
            except DeployFailed as exc:
                notes.append(f"{ref(obj)} failed: {exc.message}")
        return f" SyncFail hook(s): {'; '.join(notes)}."

    def dry_run(self, sync, hooks, live, deferred=None):
        """Server-side dry run of every object; collect every error before failing so one run shows them all.

        Objects in ``deferred`` wait for their Namespace or CRD: predicted as created, dry-run later.
        """
        deferred = deferred or {}
        errors = []
        predicted = []
        checked = [obj for obj in sync if key(obj) not in deferred]
        self._resolve(checked)
        dry_runs = dict(zip([key(obj) for obj in checked], concurrently(
            lambda obj: self.client.apply(obj, dry_run=True, force=self.force), checked)))
        for obj in sync:
            if key(obj) in deferred:
                predicted.append({"key": key(obj), "ref": ref(obj), "obj": obj, "dry_run": obj, "action": "create",
                                  "deferred": deferred[key(obj)]})
                continue
            dry, error = dry_runs[key(obj)]
            if error is not None:
                errors.append(error)
                continue
            before = live[key(obj)]
            if before is None:
                action = "create"
            elif normalise(dry) == normalise(before):
                action = "unchanged"
            else:
                action = "configure"
            predicted.append({"key": key(obj), "ref": ref(obj), "obj": obj, "dry_run": dry, "action": action})
        for obj in hooks:
            if key(obj) in deferred:
                continue
            probe = copy.deepcopy(obj)
            probe["metadata"].pop("name", None)
            probe["metadata"]["generateName"] = obj["metadata"]["name"][:50] + "-"
            try:
                self.client.create(probe, dry_run=True)
            except K8sApiError as exc:
                errors.append(exc)
        if errors:
            conflicts = [c for exc in errors for c in exc.conflicts]
            self.result["validation_errors"] = [exc.message for exc in errors]
            self.result["conflicts"] = conflicts
            listed = "\n- ".join(exc.message for exc in errors)
            raise DeployFailed(
                f"{len(errors)} of {len(sync) + len(hooks)} object(s) failed the server-side dry run; nothing was "
                f"changed:\n- {listed}", self.result)
        return predicted

    def apply_waves(self, sync, predicted, live, sync_hooks=()):
        by_key = dict((entry["key"], entry) for entry in predicted)
        hook_keys = set(key(obj) for obj in sync_hooks)
        started = time.monotonic()
        for wave, objs in waves(sorted(list(sync) + list(sync_hooks), key=sort_key)):
            wave_hooks = [obj for obj in objs if key(obj) in hook_keys]
            objs = [obj for obj in objs if key(obj) not in hook_keys]
            self.log(f"wave {wave}: applying {len(objs)} object(s), {len(wave_hooks)} Sync hook(s)")
            # The objects of one wave do not wait for each other: applied concurrently. Once one fails, no
            # other is started; those under way finish and are reported applied (or failed) like the rest.
            to_send = [obj for obj in objs if key(obj) not in self._pre_applied]
            self._resolve(to_send)
            outcomes = dict(zip([key(obj) for obj in to_send], concurrently(
                lambda obj: self.client.apply(obj, force=self.force), to_send, stop_on_error=True)))
            applied = []
            errors = []
            for obj in objs:
                before = live[key(obj)]
                after, error = self._pre_applied.get(key(obj)), None
                if after is None:
                    after, error = outcomes[key(obj)]
                if error is not None:
                    errors.append((obj, error))
                    continue
                if after is _NOT_STARTED:
                    continue
                # Content, not resourceVersion: the API server also bumps it for field-ownership bookkeeping
                # alone (a Namespace created by an apply that owned no field gets "before-first-apply").
                changed = before is None or normalise(after) != normalise(before)
                entry = by_key[key(obj)]
                entry["action"] = ("created" if before is None else "configured") if changed else "unchanged"
                self.result["objects"].append(self._summary(entry))
                self.result["changed"] = self.result["changed"] or changed
                applied.append((obj, changed))
            if errors:
                # Reported by run(): the objects whose request failed may or may not have changed.
                self.in_flight = ", ".join(ref(obj) for obj, _error in errors)
                raise errors[0][1]
            if self.wait:
                for obj, _changed in applied:
                    if obj["kind"] in PREDICATES:
                        self.wait_workload(obj, live[key(obj)], wave)
            for obj in wave_hooks:
                self.run_hook(obj, "Sync")
        self.result["timings"]["apply_and_rollout_s"] = round(time.monotonic() - started, 3)

    def interrupted(self, exc, sync):
        """The API failed after the dry run passed: say exactly what was applied and what was not."""
        applied = self.result["objects"]
        done = set(entry["ref"] for entry in applied)
        self.result["applied"] = [entry["ref"] for entry in applied]
        self.result["not_applied"] = [ref(obj) for obj in sync if ref(obj) not in done]
        self.result["in_flight"] = self.in_flight
        self.result["failure"] = exc.message
        cause = "the Kubernetes API stopped answering" if exc.unreachable else "the API server refused a change"
        lines = [f"deploy interrupted: {cause} ({exc.message})."]
        if applied:
            listed = ", ".join(f"{entry['ref']} [{entry['action']}]" for entry in applied)
            lines.append(f"Applied ({len(applied)}): {listed}.")
        else:
            lines.append("No object was applied.")
        if self.in_flight and exc.unreachable:
            several = ", " in self.in_flight
            were, they = ("were", "they") if several else ("was", "it")
            lines.append(f"{self.in_flight} {were} being applied when the connection failed: {they} may or may not "
                         "have changed.")
        if self.result["not_applied"]:
            not_applied = self.result["not_applied"]
            lines.append(f"Not applied ({len(not_applied)}): {', '.join(not_applied)}.")
        hooks = self.result["hooks"]
        if hooks:
            listed = ", ".join(f"{h['phase']} {h['ref']} {h.get('result', 'started')}" for h in hooks)
            lines.append(f"Hooks: {listed}.")
        lines.append("Nothing was rolled back. Server-side apply is idempotent: once the API answers, run the task "
                     "again to apply the rest (applied objects stay as they are).")
        return " ".join(lines)

    def wait_workload(self, obj, before, wave):
        label = f"{ref(obj)} (wave {wave})"
        try:
            # A Deployment's new pods fail the wait at once on a reason that does not clear by itself.
            probe = RolloutProbe(self.client) if obj["kind"] == "Deployment" else None
            self.waiter.wait(obj["kind"], lambda: self.client.get_obj(obj), label, probe=probe)
        except (WaitFailed, WaitTimeout) as exc:
            reason = str(exc)
            if obj["kind"] == "Deployment" and "; pod " not in reason:
                selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")
                problems = pod_problems(self.client, obj["metadata"].get("namespace"), selector)
                if problems:
                    reason += "; " + "; ".join(problems)
            self.fail_rollout(reason)

    def fail_rollout(self, reason):
        """Roll back every Deployment this run changed (when asked), then fail with both revisions."""
        self.result["failure"] = reason
        notes = []
        if self.rollback_on_failure:
            rollbacks = []
            for _name, info in self._changed_deployments():
                rollbacks.append(self.rollback_deployment(*info))
            self.result["rollback"] = rollbacks or None
            for rb in rollbacks:
                if rb.get("error"):
                    notes.append(f"rollback of {rb['deployment']} FAILED: {rb['error']}")
                else:
                    notes.append(f"rolled {rb['deployment']} back from revision {rb['failed_revision']} to the "
                                 f"template of revision {rb['restored_revision']} (now revision "
                                 f"{rb['revision_after_rollback']}, {rb['state']})")
        else:
            notes.append("rollback_on_failure=false: left as is")
        self.result["changed"] = True
        outcome = ". ".join(notes) if notes else "No Deployment had a previous revision to roll back to"
        raise DeployFailed(f"rollout failed: {reason}. {outcome}", self.result)

    def _changed_deployments(self):
        for entry in self.result["objects"]:
            if entry["kind"] == "Deployment" and entry["action"] == "configured":
                obj, before = self._deploy_index[entry["ref"]]
                yield entry["ref"], (obj, before)

    def rollback_deployment(self, obj, before):
        started = time.monotonic()
        info = {"deployment": ref(obj), "restored_revision": revision_of(before)}
        try:
            current = self.client.get_obj(obj)
            info["failed_revision"] = revision_of(current)
            target = None
            for rs in owned_replicasets(self.client, current):
                if same_template(rs["spec"]["template"], before["spec"]["template"]):
                    target = rs
            if target is None:
                raise RolloutError(f"the ReplicaSet of revision {revision_of(before)} is gone "
                                   "(revisionHistoryLimit too low?)")
            refusal = schema_window_refusal(  # a migration the previous release cannot live with
                target["spec"]["template"], current["spec"]["template"], revision_of(target), revision_of(current),
                [h["ref"] for h in self.result["hooks"] if h.get("result") == "succeeded"])
            if refusal:
                raise RolloutError(refusal)
            undo(self.client, current, to_revision=revision_of(target), force=True)
            self.waiter.wait("Deployment", lambda: self.client.get_obj(obj), ref(obj) + " (rollback)",
                             probe=RolloutProbe(self.client))
            after = self.client.get_obj(obj)
            info["revision_after_rollback"] = revision_of(after)
            info["state"] = "Available"
        except (K8sApiError, RolloutError, WaitFailed, WaitTimeout) as exc:
            info["error"] = getattr(exc, "message", None) or str(exc)
            info.setdefault("failed_revision", None)
            info["revision_after_rollback"] = None
            info["state"] = "unknown"
        info["duration_s"] = round(time.monotonic() - started, 3)
        self.result["deployments"].setdefault(ref(obj), {})["revision_after"] = info["revision_after_rollback"]
        return info

    def run_hook_phase(self, objs, phase):
        for obj in objs:
            self.run_hook(obj, phase)

    def run_hook(self, obj, phase):
        started = time.monotonic()
        policies = delete_policies(obj)
        record = {"ref": ref(obj), "phase": phase, "wave": sync_wave(obj), "delete_policy": policies}
        self.result["hooks"].append(record)
        self.result["changed"] = True
        existing = self.client.get_obj(obj)
        if existing is not None:
            if "BeforeHookCreation" not in policies:
                record["result"] = "failed"
                raise DeployFailed(f"{phase} hook {ref(obj)} already exists and its hook-delete-policy "
                                   f"({','.join(policies)}) lacks BeforeHookCreation: delete it or add the policy",
                                   self.result)
            self.client.delete(obj)
            self._wait_gone(obj)
        try:
            self.client.create(obj)
        except K8sApiError as exc:
            record["result"] = "failed"
            raise DeployFailed(f"{phase} hook {ref(obj)}: {exc.message}", self.result) from None
        probe = self._job_pods_probe if obj["kind"] == "Job" else None
        try:
            if obj["kind"] in PREDICATES:
                self.hook_waiter.wait(obj["kind"], lambda: self.client.get_obj(obj), f"{phase} hook {ref(obj)}",
                                      probe=probe)
        except (WaitFailed, WaitTimeout) as exc:
            record["result"] = "failed"
            record["duration_s"] = round(time.monotonic() - started, 3)
            reason = str(exc)
            if isinstance(exc, WaitFailed) and probe is not None and exc.last is not None and "pod " not in reason:
                # The Job failed (backoff limit, deadline): say how its pods ended.
                _fatal, note = probe(exc.last)
                if note:
                    reason += "; " + note
            record["failure"] = reason
            if "HookFailed" in policies:
                self.client.delete(obj)
            if phase == "PreSync":
                raise DeployFailed(f"{reason}; the workloads were not changed", self.result) from None
            if phase == "Sync" and not list(self._changed_deployments()):
                raise DeployFailed(f"{reason}; no Deployment was changed and the later waves were not applied",
                                   self.result) from None
            if phase == "SyncFail":
                raise DeployFailed(reason, self.result) from None
            self.fail_rollout(reason)
        record["result"] = "succeeded"
        record["duration_s"] = round(time.monotonic() - started, 3)
        if "HookSucceeded" in policies:
            self.client.delete(obj)
            record["deleted"] = True

    def _job_pods_probe(self, job):
        """(fatal, note) from the pods of this Job run (selected by its uid, not an earlier run's)."""
        uid = (job.get("metadata") or {}).get("uid")
        if not uid:
            return None, None
        try:
            pods = self.client.list("v1", "Pod", namespace=job["metadata"].get("namespace"),
                                    label_selector=f"batch.kubernetes.io/controller-uid={uid}")
            # A failed pull may be the kubelet's first, made before it could read the pull Secret: the Events say.
            events = self.client.list("v1", "Event", namespace=job["metadata"].get("namespace")) if pulling_failed(pods) else []
        except K8sApiError:
            return None, None
        fatal, notes = pods_report(pods, events)
        return "; ".join(fatal) or None, "; ".join(notes[:5]) or None

    def _wait_gone(self, obj, timeout=120):
        deadline = time.monotonic() + timeout
        while self.client.get_obj(obj) is not None:
            if time.monotonic() > deadline:
                raise DeployFailed(f"{ref(obj)}: still present {timeout}s after deletion (finalizers?)", self.result)
            time.sleep(0.5)

    @staticmethod
    def _summary(entry):
        obj = entry["obj"]
        return {
            "ref": entry["ref"],
            "kind": obj["kind"],
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"].get("namespace"),
            "wave": sync_wave(obj),
            "action": entry["action"],
        }
