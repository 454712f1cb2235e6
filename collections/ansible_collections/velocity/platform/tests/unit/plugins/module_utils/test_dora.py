# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DORA metrics on a recorded series of events whose answers were worked out by hand."""

from __future__ import annotations

import json

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.metrics.dora import (
    DoraError,
    compute,
    read_events,
    render_table,
)

# Worked answers:
#  deploys e1 e2 e3 e4 e6 e7 = 6, successes e1 e3 e6 = 3, failures e2 e4 e7 = 3 -> CFR 0.5
#  lead times 65, 70, 80 min -> median 70 min = 4200 s
#  restore: e2 rolled itself back in 4 min (240 s); e4 restored by rollback e5 at 09:30,
#  30 min after it started (1800 s); e7 never restored -> MTTR (240 + 1800) / 2 = 1020 s
#  window 2026-01-01T09:00 .. 2026-01-05T09:05 = 4.00347 days -> 3 / 4.00347 = 0.749 per day
SERIES = [
    {"type": "deploy", "result": "success", "commit": "a1", "commit_time": "2026-01-01T08:00:00Z",
     "started_at": "2026-01-01T09:00:00Z", "finished_at": "2026-01-01T09:05:00Z", "revision": 1},
    {"type": "deploy", "result": "failure", "auto_rollback": True, "commit": "b2",
     "started_at": "2026-01-02T10:00:00Z", "finished_at": "2026-01-02T10:04:00Z", "revision": 2, "rolled_back_to": 1},
    {"type": "deploy", "result": "success", "commit": "c3", "commit_time": "2026-01-02T11:00:00Z",
     "started_at": "2026-01-02T12:00:00Z", "finished_at": "2026-01-02T12:10:00Z", "revision": 3},
    {"type": "deploy", "result": "failure", "commit": "d4",
     "started_at": "2026-01-03T09:00:00Z", "finished_at": "2026-01-03T09:10:00Z", "revision": 4},
    {"type": "rollback", "result": "success",
     "started_at": "2026-01-03T09:20:00Z", "finished_at": "2026-01-03T09:30:00Z", "revision": 5, "rolled_back_to": 3},
    {"type": "deploy", "result": "success", "commit": "e6", "commit_time": "2026-01-04T07:00:00+00:00",
     "started_at": "2026-01-04T08:00:00+00:00", "finished_at": "2026-01-04T08:20:00+00:00", "revision": 6},
    {"type": "deploy", "result": "failure", "commit": "f7",
     "started_at": "2026-01-05T09:00:00Z", "finished_at": "2026-01-05T09:05:00Z", "revision": 7},
]


def lines(events):
    return [json.dumps(e) + "\n" for e in events]


def test_recorded_series_gives_the_worked_answers():
    report = compute(read_events(lines(SERIES)))
    assert report["deployments"] == 6
    assert report["successful_deployments"] == 3
    assert report["failed_deployments"] == 3
    assert report["rollbacks"] == 1
    assert report["change_failure_rate"] == 0.5
    assert report["lead_time_for_change_seconds"] == 4200
    assert report["time_to_restore_seconds"] == 1020
    assert report["unrestored_failures"] == 1
    assert report["window_days"] == pytest.approx(4.003, abs=0.001)
    assert report["deployment_frequency_per_day"] == 0.749


def test_order_of_lines_does_not_matter():
    assert compute(read_events(lines(SERIES[::-1]))) == compute(read_events(lines(SERIES)))


def test_empty_series_has_no_metrics_but_does_not_fail():
    report = compute(read_events(["\n"]))
    assert report["deployments"] == 0
    assert report["lead_time_for_change_seconds"] is None
    assert report["time_to_restore_seconds"] is None
    assert "n/a" in render_table(report)


def test_short_window_counts_as_one_day():
    report = compute(read_events(lines(SERIES[:1])))
    assert report["window_days"] == 1.0 and report["deployment_frequency_per_day"] == 1.0


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("{not json", "line 2: not JSON"),
        (json.dumps({"type": "deploy", "result": "success", "started_at": "2026-01-01T00:00:00Z"}), "missing field 'finished_at'"),
        (json.dumps(dict(SERIES[0], type="promote")), "field 'type' must be one of"),
        (json.dumps(dict(SERIES[0], result="meh")), "field 'result' must be one of"),
        (json.dumps(dict(SERIES[0], started_at="yesterday")), "field 'started_at'"),
        (json.dumps(dict(SERIES[0], finished_at="2025-01-01T00:00:00Z")), "finished_at is before started_at"),
    ],
)
def test_a_bad_event_names_the_line_and_field(broken, message):
    with pytest.raises(DoraError, match=message) as err:
        read_events([json.dumps(SERIES[0]), broken], source="sink.jsonl")
    assert "sink.jsonl line 2" in str(err.value)


def test_table_is_readable():
    table = render_table(compute(read_events(lines(SERIES))))
    assert "Change failure rate" in table and "50.0% (3 of 6 deployments)" in table
    assert "17.0 min" in table  # MTTR 1020 s
    assert "1 failure(s) not restored" in table


def test_events_are_read_as_written_and_the_old_field_name_is_named():
    """One schema: `type` and `auto_rollback`; an event with the old `stage` is refused with the rename to do."""
    events = read_events(lines(SERIES))
    assert events[1]["auto_rollback"] is True and "auto_rollback" not in events[0]
    old = dict(SERIES[0])
    old["stage"] = old.pop("type")
    with pytest.raises(DoraError, match=r"line 1: missing field 'type' .*rename 'stage' to 'type'"):
        read_events(lines([old]))
