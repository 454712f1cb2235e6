# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
