# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bounded concurrency of manifest_apply's reads, dry runs and wave applies (k8s/apply.py)."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import _NOT_STARTED, concurrently, first_error
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sApiError


def test_results_keep_the_input_order_and_errors_stay_with_their_item():
    def call(n):
        time.sleep(0.01 * (5 - n))  # later items finish first
        if n == 2:
            raise K8sApiError("refused %d" % n)
        return n * 10

    outcomes = concurrently(call, range(5), workers=4)
    assert [result for result, _error in outcomes] == [0, 10, None, 30, 40]
    assert [error.message if error else None for _result, error in outcomes] == [None, None, "refused 2", None, None]
    with pytest.raises(K8sApiError, match="refused 2"):
        first_error(outcomes)


def test_no_more_than_workers_calls_run_at_once():
    lock = threading.Lock()
    state = {"now": 0, "most": 0}

    def call(_n):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1

    concurrently(call, range(12), workers=3)
    assert 1 < state["most"] <= 3


def test_after_a_failure_no_new_call_starts_and_calls_under_way_finish():
    started = []

    def call(n):
        started.append(n)
        if n == 0:
            raise K8sApiError("API gone", unreachable=True)
        time.sleep(0.05)
        return n

    outcomes = concurrently(call, range(10), workers=2, stop_on_error=True)
    assert outcomes[0][1].unreachable
    finished = [r for r, e in outcomes if e is None and r is not _NOT_STARTED]
    assert finished == sorted(set(started) - {0})  # every started call's result is kept
    assert sum(1 for r, _e in outcomes if r is _NOT_STARTED) >= 7


def test_other_exceptions_propagate():
    def call(n):
        raise ValueError("bug %d" % n)

    with pytest.raises(ValueError):
        concurrently(call, range(3), workers=2)
