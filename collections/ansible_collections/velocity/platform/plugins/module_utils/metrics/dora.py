# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DORA metrics from the deployment events the deploy and rollback roles record,
and the CI runs that `.ci/run` records beside them.

One JSON object per line in the sink file::

    {"type": "deploy" | "rollback" | "ci", "result": "success" | "failure",
     "auto_rollback": bool (a failed deploy the module rolled back itself),
     "started_at": ISO-8601, "finished_at": ISO-8601,
     "commit": "<sha>", "environment": "...", "commit_time": ISO-8601 (optional),
     "revision": int, "rolled_back_to": int (optional), "app": "..."}

The one schema, written by the role velocity.platform.dora_event (which the deploy and
rollback roles include) and by ``.ci/run``; read here as written, without renaming.

A ``ci`` event is one run of the pipeline's checks (``.ci/run``) on a commit; it
carries ``duration_s`` and counts in the ``ci`` summary, never in the four keys.

Definitions (the four keys of DORA's "Accelerate" metrics):

* deployment frequency: successful deploys per day over the window (first event to
  last event, at least one day);
* lead time for change: median of finished_at - commit_time over successful deploys
  that carry a commit_time;
* change failure rate: failed deploys / all deploys (rollbacks are not deploys);
* time to restore (MTTR): mean, over failed deploys, of the time from the failed
  deploy's start (the bad change reaching the environment) to the restore: its own
  finished_at when it rolled itself back, else the finish of the next successful
  deploy or rollback. A failure never restored is counted in ``unrestored``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

REQUIRED_FIELDS = ("type", "result", "started_at", "finished_at")
TYPES = ("deploy", "rollback", "ci")
RESULTS = ("success", "failure")


class DoraError(ValueError):
    """An event that cannot be read; the message names the line and the field."""


def parse_time(value, where):
    if not isinstance(value, str) or not value:
        raise DoraError(f"{where}: expected an ISO-8601 time, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DoraError(f"{where}: {value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def validate_event(event, where):
    if not isinstance(event, dict):
        raise DoraError(f"{where}: expected a JSON object")
    for name in REQUIRED_FIELDS:
        if name not in event:
            hint = " (an event written before the one schema: rename 'stage' to 'type')" if "stage" in event else ""
            raise DoraError(f"{where}: missing field {name!r}{hint}")
    if event["type"] not in TYPES:
        raise DoraError(f"{where}: field 'type' must be one of {', '.join(TYPES)}, got {event['type']!r}")
    if event["result"] not in RESULTS:
        raise DoraError(f"{where}: field 'result' must be one of {', '.join(RESULTS)}, got {event['result']!r}")
    checked = dict(event)
    checked["started_at"] = parse_time(event["started_at"], where + " field 'started_at'")
    checked["finished_at"] = parse_time(event["finished_at"], where + " field 'finished_at'")
    if event.get("commit_time") is not None:
        checked["commit_time"] = parse_time(event["commit_time"], where + " field 'commit_time'")
    if checked["finished_at"] < checked["started_at"]:
        raise DoraError(f"{where}: finished_at is before started_at")
    return checked


def read_events(lines, source="events"):
    """Parse JSON lines; blank lines are skipped, a bad line is an error naming it."""
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise DoraError(f"{where}: not JSON ({exc})") from None
        events.append(validate_event(raw, where))
    events.sort(key=lambda e: e["started_at"])
    return events


def median(values):
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def _restore_time(failure, later_events):
    if failure.get("auto_rollback"):
        return failure["finished_at"]
    for event in later_events:
        if event["result"] == "success" and event["finished_at"] >= failure["finished_at"]:
            return event["finished_at"]
    return None


def restorations(events):
    """(failed deploy, seconds until service was restored or None) for each failed deploy."""
    out = []
    for failure in events:
        if failure["type"] != "deploy" or failure["result"] != "failure":
            continue
        later = [e for e in events if e["started_at"] >= failure["started_at"] and e is not failure and e["type"] != "ci"]
        restored = _restore_time(failure, later)
        out.append((failure, None if restored is None else (restored - failure["started_at"]).total_seconds()))
    return out


def compute(events):
    """The four metrics from parsed events (see the module docstring), and the CI runs' summary."""
    ci_runs = [e for e in events if e["type"] == "ci"]
    events = [e for e in events if e["type"] != "ci"]
    deploys = [e for e in events if e["type"] == "deploy"]
    successes = [e for e in deploys if e["result"] == "success"]
    failures = [e for e in deploys if e["result"] == "failure"]

    if events:
        first = min(e["started_at"] for e in events)
        last = max(e["finished_at"] for e in events)
        window_days = max((last - first).total_seconds() / 86400.0, 1.0)
    else:
        first = last = None
        window_days = 0.0

    lead_times = [
        (e["finished_at"] - e["commit_time"]).total_seconds()
        for e in successes
        if e.get("commit_time") is not None
    ]
    restores = restorations(events)
    restore_seconds = [seconds for dummy, seconds in restores if seconds is not None]
    unrestored = len(restores) - len(restore_seconds)

    return {
        "window_start": first.isoformat() if first else None,
        "window_end": last.isoformat() if last else None,
        "window_days": round(window_days, 3),
        "deployments": len(deploys),
        "successful_deployments": len(successes),
        "failed_deployments": len(failures),
        "rollbacks": len([e for e in events if e["type"] == "rollback"]),
        "deployment_frequency_per_day": round(len(successes) / window_days, 3) if window_days else 0.0,
        "lead_time_for_change_seconds": median(lead_times),
        "change_failure_rate": round(len(failures) / float(len(deploys)), 4) if deploys else 0.0,
        "time_to_restore_seconds": round(sum(restore_seconds) / len(restore_seconds), 3) if restore_seconds else None,
        "unrestored_failures": unrestored,
        "ci": ci_summary(ci_runs),
    }


def ci_summary(runs):
    """How the CI runs went: count, pass rate, median duration, the last one."""
    passed = [r for r in runs if r["result"] == "success"]
    durations = [(r["finished_at"] - r["started_at"]).total_seconds() for r in runs]
    last = max(runs, key=lambda r: r["finished_at"]) if runs else None
    return {
        "runs": len(runs),
        "passed": len(passed),
        "failed": len(runs) - len(passed),
        "pass_rate": round(len(passed) / float(len(runs)), 4) if runs else None,
        "median_duration_seconds": median(durations),
        "last_result": last["result"] if last else None,
        "last_commit": last.get("commit") if last else None,
        "last_finished_at": last["finished_at"].isoformat() if last else None,
    }


def human_duration(seconds):
    if seconds is None:
        return "n/a"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60.0:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600.0:.1f} h"
    return f"{seconds / 86400.0:.1f} days"


def render_table(report):
    unrestored = report["unrestored_failures"]
    rows = [
        ("Deployment frequency", f"{report['deployment_frequency_per_day']:.3f} per day ("
                                 f"{report['successful_deployments']} successful in {report['window_days']:.1f} days)"),
        ("Lead time for change", human_duration(report["lead_time_for_change_seconds"]) + " (median)"),
        ("Change failure rate", f"{report['change_failure_rate'] * 100:.1f}% "
                                f"({report['failed_deployments']} of {report['deployments']} deployments)"),
        ("Time to restore (MTTR)", human_duration(report["time_to_restore_seconds"]) + (
            f" ({unrestored} failure(s) not restored)" if unrestored else "")),
        ("Rollbacks", str(report["rollbacks"])),
    ]
    ci = report.get("ci") or {}
    if ci.get("runs"):
        rows.append(("CI runs", f"{ci['runs']}, {ci['passed']} passed, median "
                                f"{human_duration(ci['median_duration_seconds'])}, last {ci['last_result']}"))
    width = max(len(name) for name, dummy in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
