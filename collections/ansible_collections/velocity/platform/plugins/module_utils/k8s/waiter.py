# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness predicates, one pure function per kind, and a Waiter that polls them.

Unlike kubernetes.core's waiter, the Deployment predicate reads the Progressing
condition and fails fast on ProgressDeadlineExceeded, and the Job predicate fails
fast on a Failed (or FailureTarget) condition, instead of waiting for the timeout.
A caller may also pass a ``probe`` (e.g. the hook Job's pods): a waiting reason that
never clears by itself (FAIL_FAST_WAITING) ends the wait at once with the pod's message,
and the last note it gave is part of a timeout's or a failure's message.

A Deployment's rollout is probed by RolloutProbe: only the pods of the NEW ReplicaSet (the
pod-template-hash of the ReplicaSet whose template is the Deployment's) count. One of them
waiting for a FAIL_FAST_WAITING reason, or in CrashLoopBackOff after CRASH_LOOP_RESTARTS
restarts, ends the wait at once; the message names the pod's reason, the last exit code, and
the kubelet's latest Warning events for that pod (the pull error: "401 Unauthorized",
"not found"; "Back-off restarting failed container"). A readiness that never passes is not
fail-fast (it may pass later): it ends at progressDeadlineSeconds (ProgressDeadlineExceeded),
and the message then carries the readiness probe's failure event ("Readiness probe failed: ...").
"""

from __future__ import annotations

import re
import time
from collections import namedtuple

from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sApiError
from ansible_collections.velocity.platform.plugins.module_utils.k8s.rollout import (
    HASH_LABEL,
    current_replicaset,
    epoch_seconds,
    owned_replicasets,
)

# done: the object reached its goal; failed: it never will (stop waiting); message: why.
Status = namedtuple("Status", ["done", "failed", "message"])

# Container waiting reasons that do not clear without a change to the cluster or the manifests: a missing
# ConfigMap/Secret (key), an image that cannot be pulled (wrong name, tag, digest or credentials).
FAIL_FAST_WAITING = ("CreateContainerConfigError", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                     "ErrImageNeverPull")
# A container of a rollout's new pods in CrashLoopBackOff fails the rollout once it has restarted this often: it
# started and died CRASH_LOOP_RESTARTS + 1 times (a first crash may be a dependency still starting; three in a row,
# 10 s and 20 s of kubelet back-off apart, are the image or its configuration). A hook Job has its backoffLimit.
CRASH_LOOP_RESTARTS = 2
# The kubelet pulls without a pull Secret it could not read, and says so with this event. Right after a pod is
# bound, the API server's Node authorizer may not let the node read the pod's Secrets yet: that first pull fails
# ("no basic auth credentials") though the Secret is right, and the kubelet reads it again for its next pull
# (back-off 10 s, then 20 s). Such a pull failure is not fatal while the pod is younger than PULL_SECRET_GRACE_S;
# a pull that failed with the Secret read (no such event within PULL_SECRET_SLACK_S before it) is, as before.
PULL_CREDENTIALS_UNREAD = "FailedToRetrieveImagePullSecret"
PULL_SECRET_GRACE_S = 60
PULL_SECRET_SLACK_S = 5
# Kubelet event reasons worth quoting in a failure message (the pull error, the probe failure, the back-off).
EVENT_REASONS = ("Failed", "BackOff", "Unhealthy", "FailedMount", "FailedCreatePodSandBox", "InspectFailed",
                 "ErrImageNeverPull", PULL_CREDENTIALS_UNREAD)
EVENTS_PER_POD = 2


def pod_container_states(pod):
    """[(container, state, reason, message)] of a pod's containers (init first) that wait or terminated badly."""
    out = []
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting:
            out.append((cs.get("name"), "waiting", waiting.get("reason") or "", waiting.get("message") or ""))
        elif terminated and terminated.get("exitCode", 0) != 0:
            out.append((cs.get("name"), "terminated",
                        f"{terminated.get('reason') or 'Error'}, exit code {terminated.get('exitCode')}",
                        terminated.get("message") or ""))
    return out


PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")


def pulling_failed(pods):
    """Whether a container of these pods waits after a failed image pull (then the caller reads the Events)."""
    return any(state == "waiting" and reason in PULL_REASONS
               for pod in pods for dummy, state, reason, dummy2 in pod_container_states(pod))


def pods_report(pods, events=(), now=None):
    """(fatal, notes) for a Job's pods: fatal lists the containers waiting for a FAIL_FAST_WAITING reason (not a
    pull that failed because the kubelet could not read the pull Secret yet: :func:`pulled_without_secret`)."""
    fatal, notes = [], []
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name")
        for container, state, reason, message in pod_container_states(pod):
            detail = f" ({message})" if message else ""
            text = f"pod {name} container {container} {state}: {reason}{detail}"
            if state == "waiting" and reason in PULL_REASONS and pulled_without_secret(pod, events, now):
                notes.append(text + "; the kubelet could not read the pull Secret yet and pulls again")
                continue
            notes.append(text)
            if state == "waiting" and reason in FAIL_FAST_WAITING:
                fatal.append(text)
    return fatal, notes


def _event_time(event):
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""


def pod_events(events, pod_name, limit=EVENTS_PER_POD):
    """The latest distinct Warning event texts ("Reason: message") the kubelet wrote for one pod, newest first."""
    mine = [e for e in events or []
            if (e.get("involvedObject") or {}).get("kind") == "Pod"
            and (e.get("involvedObject") or {}).get("name") == pod_name
            and e.get("type") == "Warning" and e.get("reason") in EVENT_REASONS]
    out = []
    for event in sorted(mine, key=_event_time, reverse=True):
        text = f"{event.get('reason')}: {(event.get('message') or '').strip()}"
        if text not in out:
            out.append(text)
        if len(out) >= limit:
            break
    return out


def pulled_without_secret(pod, events, now=None):
    """Whether the pod's latest pull failure came right after the kubelet failed to read its pull Secret, within
    PULL_SECRET_GRACE_S of the pod's creation: a failure that its next pull, with the Secret, may not repeat."""
    name = (pod.get("metadata") or {}).get("name")
    mine = [e for e in events or []
            if (e.get("involvedObject") or {}).get("kind") == "Pod" and (e.get("involvedObject") or {}).get("name") == name]
    unread = [t for t in (epoch_seconds(_event_time(e)) for e in mine if e.get("reason") == PULL_CREDENTIALS_UNREAD) if t]
    if not unread:
        return False
    created = epoch_seconds((pod.get("metadata") or {}).get("creationTimestamp"))
    now = time.time() if now is None else now
    if created is None or now - created > PULL_SECRET_GRACE_S:
        return False
    failed = [t for t in (epoch_seconds(_event_time(e)) for e in mine if e.get("reason") == "Failed") if t]
    return not failed or max(failed) <= max(unread) + PULL_SECRET_SLACK_S


def _pod_ready(pod):
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def rollout_pods_report(pods, events=(), crash_restarts=CRASH_LOOP_RESTARTS, now=None):
    """(fatal, notes) for the pods of a Deployment's new ReplicaSet.

    fatal: a container waiting for a FAIL_FAST_WAITING reason, or in CrashLoopBackOff after ``crash_restarts``
    restarts; not an image pull that failed because the kubelet could not read the pull Secret yet
    (:func:`pulled_without_secret`). notes: every pod not Ready, with its containers' states. Each text carries the pod's latest kubelet
    Warning events (``events``: the namespace's Events), which say why (the pull error, the probe failure)."""
    fatal, notes = [], []
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        name = (pod.get("metadata") or {}).get("name")
        status = pod.get("status") or {}
        pod_fatal, parts = False, []
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting")
            if not waiting:
                continue
            reason = waiting.get("reason") or ""
            restarts = cs.get("restartCount", 0)
            text = f"container {cs.get('name')} waiting: {reason}"
            if waiting.get("message"):
                text += f" ({waiting['message']})"
            last = (cs.get("lastState") or {}).get("terminated")
            if last:
                text += (f", restarted {restarts} time(s), last exit code {last.get('exitCode')}"
                         f" ({last.get('reason') or 'Error'})")
            parts.append(text)
            if reason in PULL_REASONS and pulled_without_secret(pod, events, now):
                parts[-1] += "; the kubelet could not read the pull Secret yet and pulls again"
            elif reason in FAIL_FAST_WAITING or (reason == "CrashLoopBackOff" and restarts >= crash_restarts):
                pod_fatal = True
        if not parts and _pod_ready(pod):
            continue
        if not parts:
            ready = condition(pod, "Ready") or {}
            parts.append(f"not Ready ({ready.get('message') or ready.get('reason') or status.get('phase') or 'pending'})")
        found = pod_events(events, name)
        if found:
            parts.append("events: " + " | ".join(found))
        text = f"pod {name}: " + "; ".join(parts)
        notes.append(text)
        if pod_fatal:
            fatal.append(text)
    return fatal, notes


class RolloutProbe:
    """probe(deployment) -> (fatal, note) from the pods of the Deployment's new ReplicaSet, for Waiter.wait.

    The new ReplicaSet is the owned one whose template is the Deployment's (as the deployment controller picks
    it); its pod-template-hash selects the pods, so pods of older revisions (still serving, or terminating)
    never fail the rollout. The namespace's Events are read only when a pod is not Ready."""

    def __init__(self, client, crash_restarts=CRASH_LOOP_RESTARTS):
        self.client = client
        self.crash_restarts = crash_restarts

    def pods(self, deployment):
        new_rs = current_replicaset(owned_replicasets(self.client, deployment), deployment)
        if new_rs is None:
            return None
        labels = (new_rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
        selector = dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        if labels.get(HASH_LABEL):
            selector[HASH_LABEL] = labels[HASH_LABEL]
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return self.client.list("v1", "Pod", namespace=deployment["metadata"].get("namespace"),
                                label_selector=label_selector)

    def stale_failure(self, deployment):
        """True when the Progressing condition's ProgressDeadlineExceeded names a ReplicaSet that is not the new one.

        After a rollback to an older revision the controller keeps the failed ReplicaSet's condition until that
        ReplicaSet's pods are gone; it says nothing about the revision now rolling out."""
        progressing = condition(deployment, "Progressing") or {}
        named = re.search(r'ReplicaSet "([^"]+)"', progressing.get("message") or "")
        if not named:
            return False
        try:
            new_rs = current_replicaset(owned_replicasets(self.client, deployment), deployment)
        except K8sApiError:
            return False
        return new_rs is not None and new_rs["metadata"]["name"] != named.group(1)

    def __call__(self, deployment):
        try:
            pods = self.pods(deployment)
            if pods is None:
                return None, "the new ReplicaSet is not created yet"
            events = []
            if any(not _pod_ready(p) for p in pods):
                events = self.client.list("v1", "Event", namespace=deployment["metadata"].get("namespace"))
        except K8sApiError:
            return None, None  # a failed read must not fail the rollout; the next poll reads again
        fatal, notes = rollout_pods_report(pods, events, self.crash_restarts)
        return "; ".join(fatal) or None, "; ".join(notes[:5]) or None


def condition(obj, ctype):
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def _observed(obj):
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return status.get("observedGeneration", 0) >= meta.get("generation", 0)


def deployment_ready(obj, ignore_deadline=False):
    """ignore_deadline: the Progressing condition's ProgressDeadlineExceeded is about an earlier ReplicaSet."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not _observed(obj):
        return Status(False, False, f"controller has not observed generation {obj['metadata'].get('generation')} yet")
    progressing = condition(obj, "Progressing")
    if progressing and progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded" \
            and not ignore_deadline:
        deadline = spec.get("progressDeadlineSeconds", 600)
        return Status(False, True, f"ProgressDeadlineExceeded: rollout exceeded its progress deadline ({deadline}s): "
                                   f"{progressing.get('message', '')}")
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < want:
        return Status(False, False, f"{updated} of {want} updated replicas")
    if total > updated:
        return Status(False, False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return Status(False, False, f"{available} of {updated} updated replicas available")
    return Status(True, False, f"{available}/{want} replicas updated and available")


def job_complete(obj):
    for failed_type in ("Failed", "FailureTarget"):
        cond = condition(obj, failed_type)
        if cond and cond.get("status") == "True":
            return Status(False, True, f"job failed ({cond.get('reason', '')}): {cond.get('message', '')}")
    for done_type in ("Complete", "SuccessCriteriaMet"):
        cond = condition(obj, done_type)
        if cond and cond.get("status") == "True":
            succeeded = (obj.get("status") or {}).get("succeeded", 0)
            return Status(True, False, f"job complete ({succeeded} succeeded)")
    status = obj.get("status") or {}
    return Status(False, False, f"job running (active {status.get('active', 0)}, "
                                f"succeeded {status.get('succeeded', 0)}, failed {status.get('failed', 0)})")


def statefulset_ready(obj):
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not _observed(obj):
        return Status(False, False, "controller has not observed the new generation yet")
    want = spec.get("replicas", 1)
    if status.get("updatedReplicas", 0) < want or status.get("readyReplicas", 0) < want:
        return Status(False, False, f"{status.get('readyReplicas', 0)} of {want} replicas updated and ready")
    if status.get("currentRevision") != status.get("updateRevision"):
        return Status(False, False, "rolling update in progress")
    return Status(True, False, f"{want} replicas ready")


def daemonset_ready(obj):
    status = obj.get("status") or {}
    if not _observed(obj):
        return Status(False, False, "controller has not observed the new generation yet")
    want = status.get("desiredNumberScheduled", 0)
    if status.get("updatedNumberScheduled", 0) < want or status.get("numberAvailable", 0) < want:
        return Status(False, False, f"{status.get('numberAvailable', 0)} of {want} pods updated and available")
    return Status(True, False, f"{want} pods available")


def pod_ready(obj):
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Failed":
        return Status(False, True, "pod failed")
    cond = condition(obj, "Ready")
    if phase == "Succeeded" or (cond and cond.get("status") == "True"):
        return Status(True, False, f"pod {phase}")
    return Status(False, False, f"pod {phase}, not ready")


def crd_established(obj):
    names = condition(obj, "NamesAccepted")
    if names and names.get("status") == "False":
        return Status(False, True, f"CRD names not accepted: {names.get('message') or names.get('reason')}")
    cond = condition(obj, "Established")
    if cond and cond.get("status") == "True":
        return Status(True, False, "CRD established")
    return Status(False, False, "CRD not established yet")


PREDICATES = {
    "CustomResourceDefinition": crd_established,
    "Deployment": deployment_ready,
    "Job": job_complete,
    "StatefulSet": statefulset_ready,
    "DaemonSet": daemonset_ready,
    "Pod": pod_ready,
}


class WaitTimeout(Exception):
    def __init__(self, message, last):
        super().__init__(message)
        self.last = last


class WaitFailed(Exception):
    def __init__(self, message, last):
        super().__init__(message)
        self.last = last


FIRST_STEP = 0.25


class Waiter:
    """Poll `fetch()` until PREDICATES[kind] says done (return it) or failed (raise WaitFailed);
    raise WaitTimeout after `timeout` seconds of a monotonic clock.

    The pauses start at FIRST_STEP and grow by half each time up to `interval`, so a rollout that is
    ready in a second is seen within a fraction of one, and a long one costs few reads."""

    def __init__(self, timeout=300, interval=1.0, clock=time.monotonic, sleep=time.sleep):
        self.timeout = timeout
        self.interval = interval
        self.clock = clock
        self.sleep = sleep

    def wait(self, kind, fetch, label, probe=None):
        """``probe(obj)``, when given, returns (fatal, note): a fatal message ends the wait (WaitFailed), the
        note (e.g. why the pods wait) is added to the progress message a timeout reports."""
        predicate = PREDICATES[kind]
        deadline = self.clock() + self.timeout
        last_message = "not found"
        step = min(self.interval, FIRST_STEP)
        while True:
            obj = fetch()
            if obj is not None:
                status = predicate(obj)
                if status.failed and probe is not None and getattr(probe, "stale_failure", None) and \
                        probe.stale_failure(obj):
                    status = deployment_ready(obj, ignore_deadline=True)
                last_message = status.message
                if status.failed:
                    message = status.message
                    if probe is not None:
                        # Why it failed, from the pods (e.g. the readiness probe's failure event at the deadline).
                        _fatal, note = probe(obj)
                        if note:
                            message = f"{message}; {note}"
                    raise WaitFailed(f"{label}: {message}", obj)
                if status.done:
                    return obj
                if probe is not None:
                    fatal, note = probe(obj)
                    if fatal:
                        raise WaitFailed(f"{label}: {fatal}", obj)
                    if note:
                        last_message = f"{last_message}; {note}"
            now = self.clock()
            if now >= deadline:
                raise WaitTimeout(f"{label}: not ready after {self.timeout}s ({last_message})", obj)
            self.sleep(min(step, deadline - now))
            step = min(self.interval, step * 1.5)


class NoopWaiter(Waiter):
    """Check mode: nothing was changed, so nothing to wait for."""

    def wait(self, kind, fetch, label, probe=None):
        return None
