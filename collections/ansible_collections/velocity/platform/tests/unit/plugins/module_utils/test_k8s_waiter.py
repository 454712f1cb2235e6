# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s import waiter as w


def deployment(generation=2, observed=2, replicas=2, updated=2, total=2, available=2, progressing=None):
    conds = []
    if progressing:
        conds.append(dict(type="Progressing", **progressing))
    return {"metadata": {"name": "d", "generation": generation},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": 12},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "conditions": conds}}


def test_deployment_ready_only_when_all_replicas_updated_and_available():
    assert w.deployment_ready(deployment()).done
    assert not w.deployment_ready(deployment(observed=1)).done
    assert "1 of 2 updated" in w.deployment_ready(deployment(updated=1)).message
    assert "old replicas" in w.deployment_ready(deployment(total=3)).message
    assert not w.deployment_ready(deployment(available=1)).done


def test_deployment_fails_fast_on_progress_deadline_exceeded():
    status = w.deployment_ready(deployment(updated=1, progressing={
        "status": "False", "reason": "ProgressDeadlineExceeded", "message": 'ReplicaSet "d-1" has timed out progressing.'}))
    assert status.failed and not status.done
    assert "progress deadline (12s)" in status.message and "timed out progressing" in status.message


def test_stale_deadline_condition_is_ignored_until_the_new_generation_is_observed():
    status = w.deployment_ready(deployment(generation=3, observed=2, progressing={
        "status": "False", "reason": "ProgressDeadlineExceeded"}))
    assert not status.failed


def test_job_complete_and_failed():
    job = {"status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}}
    assert w.job_complete(job).done
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit"}]}}
    status = w.job_complete(failed)
    assert status.failed and "BackoffLimitExceeded" in status.message
    assert not w.job_complete({"status": {"active": 1}}).done


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_waiter_times_out_on_a_monotonic_clock_with_the_last_status():
    clock = FakeClock()
    waiter = w.Waiter(timeout=5, interval=1, clock=clock, sleep=clock.sleep)
    with pytest.raises(w.WaitTimeout, match=r"not ready after 5s \(1 of 2 updated replicas\)"):
        waiter.wait("Deployment", lambda: deployment(updated=1), "Deployment ns/d")
    assert clock.now == 5


def test_waiter_stops_at_the_first_failure_without_waiting_for_the_timeout():
    clock = FakeClock()
    states = iter([deployment(updated=1), deployment(updated=1, progressing={
        "status": "False", "reason": "ProgressDeadlineExceeded", "message": "m"})])
    waiter = w.Waiter(timeout=600, interval=1, clock=clock, sleep=clock.sleep)
    with pytest.raises(w.WaitFailed):
        waiter.wait("Deployment", lambda: next(states), "Deployment ns/d")
    assert clock.now == w.FIRST_STEP  # the second read, a quarter second after the first


def test_waiter_pauses_grow_from_a_quarter_second_to_the_interval():
    clock = FakeClock()
    pauses = []
    waiter = w.Waiter(timeout=10, interval=1, clock=clock,
                      sleep=lambda s: (pauses.append(round(s, 4)), clock.sleep(s)))
    with pytest.raises(w.WaitTimeout):
        waiter.wait("Deployment", lambda: deployment(updated=1), "Deployment ns/d")
    assert pauses[:5] == [0.25, 0.375, 0.5625, 0.8438, 1.0]
    assert set(pauses[5:-1]) == {1.0} and clock.now == 10  # never sleeps past the deadline


def test_noop_waiter_never_polls():
    assert w.NoopWaiter().wait("Deployment", lambda: pytest.fail("polled"), "x") is None


def pod(name, *states, init=()):
    def statuses(items):
        return [{"name": c, "restartCount": 0, "state": state} for c, state in items]
    return {"metadata": {"name": name},
            "status": {"initContainerStatuses": statuses(init), "containerStatuses": statuses(states)}}


RUNNING_JOB = {"metadata": {"name": "migrate", "uid": "u1"}, "status": {"active": 1}}


def test_pods_report_names_the_waiting_reason_and_message_and_only_lasting_reasons_are_fatal():
    config = pod("m-1", ("migrate", {"waiting": {"reason": "CreateContainerConfigError",
                                                 "message": 'configmap "velocity-app" not found'}}))
    creating = pod("m-2", ("migrate", {"waiting": {"reason": "ContainerCreating"}}))
    pull = pod("m-3", ("migrate", {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}),
               init=[("init", {"terminated": {"exitCode": 0}})])
    crashed = pod("m-4", ("migrate", {"terminated": {"exitCode": 3, "reason": "Error"}}))
    fatal, notes = w.pods_report([config, creating, pull, crashed])
    assert fatal == ['pod m-1 container migrate waiting: CreateContainerConfigError (configmap "velocity-app" not found)',
                     "pod m-3 container migrate waiting: ImagePullBackOff (Back-off pulling image)"]
    assert notes == [fatal[0], "pod m-2 container migrate waiting: ContainerCreating", fatal[1],
                     "pod m-4 container migrate terminated: Error, exit code 3"]
    assert w.pods_report([pod("ok", ("migrate", {"running": {}}))]) == ([], [])


@pytest.mark.parametrize("reason", w.FAIL_FAST_WAITING)
def test_waiter_fails_at_once_on_a_lasting_waiting_reason_from_the_probe(reason):
    clock = FakeClock()
    waiter = w.Waiter(timeout=600, interval=1, clock=clock, sleep=clock.sleep)
    waiting = pod("m-1", ("migrate", {"waiting": {"reason": reason, "message": "why"}}))

    def probe(job):
        fatal, notes = w.pods_report([waiting])
        return "; ".join(fatal) or None, "; ".join(notes) or None

    with pytest.raises(w.WaitFailed, match="Job ns/migrate: pod m-1 container migrate waiting: %s \\(why\\)" % reason):
        waiter.wait("Job", lambda: RUNNING_JOB, "Job ns/migrate", probe=probe)
    assert clock.now == 0  # the first read decided


def test_a_timeout_reports_the_probe_note():
    clock = FakeClock()
    waiter = w.Waiter(timeout=3, interval=1, clock=clock, sleep=clock.sleep)
    with pytest.raises(w.WaitTimeout, match=r"not ready after 3s \(job running \(active 1, succeeded 0, failed 0\); "
                                            r"pod m-2 container migrate waiting: ContainerCreating\)"):
        waiter.wait("Job", lambda: RUNNING_JOB, "Job ns/migrate",
                    probe=lambda job: (None, "pod m-2 container migrate waiting: ContainerCreating"))


# ---------------------------------------------------------------------------
# A Deployment's rollout: the new ReplicaSet's pods, their waiting reasons and the kubelet's events


def event(pod_name, reason, message, when, type_="Warning"):
    return {"involvedObject": {"kind": "Pod", "name": pod_name}, "type": type_, "reason": reason,
            "message": message, "lastTimestamp": when}


def web_pod(name, state, restarts=0, last=None, ready=False):
    cs = {"name": "web", "restartCount": restarts, "state": state}
    if last:
        cs["lastState"] = {"terminated": last}
    return {"metadata": {"name": name},
            "status": {"phase": "Running" if "running" in state else "Pending", "containerStatuses": [cs],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "ContainersNotReady",
                                       "message": "containers with unready status: [web]"}]}}


def test_rollout_report_quotes_the_pull_error_event_and_a_pull_back_off_is_fatal():
    pulling = web_pod("web-1", {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}})
    events = [event("web-1", "Failed", "Failed to pull image \"x\": 401 Unauthorized", "2026-01-01T00:00:02Z"),
              event("web-1", "Failed", "Error: ErrImagePull", "2026-01-01T00:00:01Z"),
              event("web-1", "Pulling", "Pulling image", "2026-01-01T00:00:03Z", type_="Normal"),
              event("other", "Failed", "not this pod", "2026-01-01T00:00:04Z")]
    fatal, notes = w.rollout_pods_report([pulling], events)
    assert fatal == notes
    assert fatal == ['pod web-1: container web waiting: ImagePullBackOff (Back-off pulling image "x"); events: '
                     'Failed: Failed to pull image "x": 401 Unauthorized | Failed: Error: ErrImagePull']


NOW = 1796405000.0  # 2026-12-04T17:23:20Z


def iso(seconds_before_now):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(NOW - seconds_before_now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unread_secret_pull(age):
    """A pod `age` seconds old whose first pull went without the pull Secret the kubelet could not read yet."""
    pod = web_pod("web-1", {"waiting": {"reason": "ErrImagePull", "message": "no basic auth credentials"}})
    pod["metadata"]["creationTimestamp"] = iso(age)
    events = [event("web-1", "FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets "
                    "(registry); attempting to pull the image may not succeed.", iso(age - 2)),
              event("web-1", "Failed", 'Failed to pull image "x": no basic auth credentials', iso(age - 3))]
    return pod, events


def test_a_pull_made_before_the_kubelet_could_read_the_pull_secret_is_not_fatal_while_the_pod_is_young():
    pod, events = unread_secret_pull(age=8)
    fatal, notes = w.rollout_pods_report([pod], events, now=NOW)
    assert fatal == []
    assert "the kubelet could not read the pull Secret yet and pulls again" in notes[0]
    assert "FailedToRetrieveImagePullSecret" in notes[0]
    job_fatal, job_notes = w.pods_report([pod], events, now=NOW)
    assert job_fatal == [] and "pulls again" in job_notes[0]


def test_the_same_pull_failure_is_fatal_once_the_pod_is_past_the_grace():
    pod, events = unread_secret_pull(age=w.PULL_SECRET_GRACE_S + 5)
    fatal, dummy = w.rollout_pods_report([pod], events, now=NOW)
    assert len(fatal) == 1 and "no basic auth credentials" in fatal[0]
    assert len(w.pods_report([pod], events, now=NOW)[0]) == 1


def test_a_pull_that_failed_with_the_secret_read_is_fatal_at_once():
    pod, events = unread_secret_pull(age=20)
    # The kubelet's next pull, 15 s after it could not read the Secret, had it: the registry said 401.
    events.append(event("web-1", "Failed", 'Failed to pull image "x": 401 Unauthorized', iso(3)))
    fatal, dummy = w.rollout_pods_report([pod], events, now=NOW)
    assert len(fatal) == 1 and "401 Unauthorized" in fatal[0]
    # Without the kubelet's event, a pull failure is fatal at once, as it always was.
    plain = web_pod("web-2", {"waiting": {"reason": "ErrImagePull"}})
    plain["metadata"]["creationTimestamp"] = iso(2)
    assert len(w.rollout_pods_report([plain], [], now=NOW)[0]) == 1
    assert w.pulling_failed([plain]) and not w.pulling_failed([web_pod("web-3", {"running": {}})])


def test_rollout_report_crash_loop_is_fatal_only_after_the_chosen_number_of_restarts():
    last = {"exitCode": 2, "reason": "Error"}
    once = web_pod("web-1", {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}, 1, last)
    twice = web_pod("web-1", {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}, 2, last)
    fatal, notes = w.rollout_pods_report([once])
    assert fatal == [] and notes == [
        "pod web-1: container web waiting: CrashLoopBackOff (back-off 10s), restarted 1 time(s), last exit code 2 "
        "(Error)"]
    fatal, _notes = w.rollout_pods_report([twice], crash_restarts=w.CRASH_LOOP_RESTARTS)
    assert w.CRASH_LOOP_RESTARTS == 2 and len(fatal) == 1 and "last exit code 2" in fatal[0]


def test_rollout_report_a_not_ready_pod_is_a_note_with_the_readiness_probe_event_and_ready_pods_are_silent():
    unready = web_pod("web-1", {"running": {}})
    ready = web_pod("web-2", {"running": {}}, ready=True)
    terminating = web_pod("web-3", {"waiting": {"reason": "ErrImagePull"}})
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    events = [event("web-1", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404",
                    "2026-01-01T00:00:05Z")]
    fatal, notes = w.rollout_pods_report([unready, ready, terminating], events)
    assert fatal == []
    assert notes == ["pod web-1: not Ready (containers with unready status: [web]); events: Unhealthy: Readiness "
                     "probe failed: HTTP probe failed with statuscode: 404"]


class FakeClient:
    """list() of ReplicaSets, Pods and Events, recording the label selectors asked for."""

    def __init__(self, replicasets, pods, events=()):
        self.items = {"ReplicaSet": replicasets, "Pod": pods, "Event": list(events)}
        self.selectors = []

    def list(self, api_version, kind, namespace=None, label_selector=None):
        self.selectors.append((kind, label_selector))
        if kind == "Pod":
            wanted = dict(kv.split("=", 1) for kv in label_selector.split(","))
            return [p for p in self.items["Pod"]
                    if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        return self.items[kind]


def rs(name, revision, image, hash_, uid="d1"):
    return {"metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                         "ownerReferences": [{"uid": uid}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": hash_}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def test_rollout_probe_counts_only_the_pods_of_the_new_replicaset():
    deployment = {"metadata": {"name": "web", "namespace": "ns", "uid": "d1", "generation": 2},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "web", "image": "new"}]}}},
                  "status": {"observedGeneration": 2, "updatedReplicas": 1, "replicas": 2}}
    old_pod = web_pod("web-old-1", {"waiting": {"reason": "ImagePullBackOff"}})  # an old revision's trouble
    old_pod["metadata"]["labels"] = {"app": "web", "pod-template-hash": "aaa"}
    new_pod = web_pod("web-new-1", {"waiting": {"reason": "ContainerCreating"}})
    new_pod["metadata"]["labels"] = {"app": "web", "pod-template-hash": "bbb"}
    client = FakeClient([rs("web-aaa", 1, "old", "aaa"), rs("web-bbb", 2, "new", "bbb")], [old_pod, new_pod])
    fatal, note = w.RolloutProbe(client)(deployment)
    assert fatal is None and note == "pod web-new-1: container web waiting: ContainerCreating"
    assert ("Pod", "app=web,pod-template-hash=bbb") in client.selectors

    new_pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ErrImagePull", "message": "not found"}}
    client.items["Event"] = [event("web-new-1", "Failed", 'Failed to pull image "new": not found', "t")]
    fatal, _note = w.RolloutProbe(client)(deployment)
    assert fatal == ('pod web-new-1: container web waiting: ErrImagePull (not found); events: Failed: Failed to pull '
                     'image "new": not found')

    clock = FakeClock()
    waiter = w.Waiter(timeout=600, interval=1, clock=clock, sleep=clock.sleep)
    with pytest.raises(w.WaitFailed, match="Deployment ns/web: pod web-new-1: container web waiting: ErrImagePull"):
        waiter.wait("Deployment", lambda: deployment, "Deployment ns/web", probe=w.RolloutProbe(client))
    assert clock.now == 0

    no_rs = FakeClient([rs("web-aaa", 1, "old", "aaa")], [old_pod])
    assert w.RolloutProbe(no_rs)(deployment) == (None, "the new ReplicaSet is not created yet")


def test_a_failed_rollout_carries_the_probe_note():
    clock = FakeClock()
    waiter = w.Waiter(timeout=600, interval=1, clock=clock, sleep=clock.sleep)
    expired = {"metadata": {"generation": 2}, "spec": {"progressDeadlineSeconds": 20},
               "status": {"observedGeneration": 2, "conditions": [
                   {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": 'ReplicaSet "web-bbb" has timed out progressing.'}]}}
    note = "pod web-new-1: not Ready (x); events: Unhealthy: Readiness probe failed: HTTP probe failed"
    with pytest.raises(w.WaitFailed, match=r"ProgressDeadlineExceeded: rollout exceeded its progress deadline \(20s\): .*timed out progressing\.; pod "
                                           r"web-new-1: .*Readiness probe failed"):
        waiter.wait("Deployment", lambda: expired, "Deployment ns/web", probe=lambda obj: (None, note))


def test_a_deadline_condition_naming_an_earlier_replicaset_does_not_fail_the_rollback_wait():
    # Rolled back to revision 1 (web-aaa) after web-bbb timed out: the controller keeps web-bbb's condition until
    # web-bbb's pod is gone; the wait goes on, and ends when the counts are right.
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "old"}]}}
    states = []
    for total in (2, 1):
        states.append({"metadata": {"name": "web", "namespace": "ns", "uid": "d1", "generation": 3},
                       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template},
                       "status": {"observedGeneration": 3, "updatedReplicas": 1, "replicas": total,
                                  "availableReplicas": 1, "conditions": [
                                      {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                       "message": 'ReplicaSet "web-bbb" has timed out progressing.'}]}})
    ready = web_pod("web-aaa-1", {"running": {}}, ready=True)
    ready["metadata"]["labels"] = {"app": "web", "pod-template-hash": "aaa"}
    client = FakeClient([rs("web-aaa", 3, "old", "aaa"), rs("web-bbb", 2, "new", "bbb")], [ready])
    clock = FakeClock()
    waiter = w.Waiter(timeout=600, interval=1, clock=clock, sleep=clock.sleep)
    assert waiter.wait("Deployment", lambda: states.pop(0), "rollback", probe=w.RolloutProbe(client)) is not None
    assert states == []
    # Naming the new ReplicaSet, the condition fails the wait.
    client.items["ReplicaSet"] = [rs("web-bbb", 2, "old", "bbb")]
    stuck = {**states_copy(template)}
    with pytest.raises(w.WaitFailed, match="ProgressDeadlineExceeded"):
        waiter.wait("Deployment", lambda: stuck, "rollout", probe=w.RolloutProbe(client))


def states_copy(template):
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "d1", "generation": 3},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template},
            "status": {"observedGeneration": 3, "updatedReplicas": 1, "replicas": 2, "availableReplicas": 1,
                       "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                       "message": 'ReplicaSet "web-bbb" has timed out progressing.'}]}}
