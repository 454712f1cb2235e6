"""The zero-downtime benchmark's load generator counts what it must: seconds, no cluster.

benchmarks/zero_downtime.py runs its phases against the real node; these run its load generator against a
local server and a closed port, so a generator that stopped counting failures (and would report 0 failed
requests whatever happened) fails here.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .smoke import run_smoke

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import free_port
from zero_downtime import LoadGenerator, Sample, error_kind, pod_hash, render


def test_every_request_to_a_closed_port_is_a_failure():
    load = LoadGenerator("127.0.0.1", free_port(), clients=2, pause=0.01, timeout=1)
    with load, load.phase("down"):
        time.sleep(0.5)
    counted = load.count("down")
    assert counted["requests"] > 0
    assert counted["failed"] == counted["requests"]
    assert set(counted["errors"]) == {"ConnectionRefusedError"}
    assert counted["served_by"] == {}


def test_smoke_run_counts_no_failure_while_serving_and_failures_once_the_server_is_gone(tmp_path):
    result = run_smoke("zero_downtime", tmp_path, timeout=120)
    serving, closed = result["results"]["serving"], result["results"]["closed"]
    assert serving["requests"] > 0 and serving["failed"] == 0
    assert serving["served_by"] == {"smoke-abc123-xyz": serving["requests"]}
    # New-connection clients are refused at once; kept-alive connections may outlive the listener.
    assert closed["failed"] > 0
    assert closed["errors"].get("ConnectionRefusedError", 0) > 0
    assert "Smoke run only" in render(result)


def test_which_release_answered_and_since_when():
    assert pod_hash("velocity-app-6c8f9d7b5-x2k4q") == "6c8f9d7b5"
    assert pod_hash("standalone") == ""
    load = LoadGenerator("127.0.0.1", 1)

    load.samples = [Sample(t, "p", True, 200, "", by, True) for t, by in
                    [(1, "a-old-1"), (2, "a-new-1"), (3, "a-old-2"), (4, "a-new-2"), (5, "a-new-1")]]
    load.samples.append(Sample(4.5, "p", False, 0, "ConnectionResetError", "", True))
    is_new = lambda sb: pod_hash(sb) == "new"  # noqa: E731
    assert load.first_from(0, is_new) == 2
    assert load.all_from(0, 10, is_new) == 4  # the old release answered at 3: only from 4 on is it new alone
    assert load.all_from(0, 3, is_new) is None


def test_a_bare_oserror_is_reported_with_its_errno():
    import errno

    assert error_kind(OSError(errno.EHOSTUNREACH, "No route to host")) == "OSError[EHOSTUNREACH]"
    assert error_kind(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) == "ConnectionRefusedError"
    assert error_kind(TimeoutError()) == "TimeoutError"
