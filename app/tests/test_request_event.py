"""The per-request log line's fast path: same redaction and timestamp shape as the generic chain."""

from __future__ import annotations

import contextvars
import io
import json
import re
import subprocess
import sys

import pytest
import structlog

from velocity_app import logs


@pytest.fixture
def sink():
    out = io.BytesIO()
    yield out
    logs.configure_logging(stream=io.BytesIO())
    structlog.contextvars.clear_contextvars()


def _events(out: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("secret", ["plain-secret-value-123", 'with"quote\\and\\backslash', "tab\tand\nnewline-é"])
def test_a_secret_in_any_field_is_redacted_even_when_json_escapes_it(sink, secret):
    logs.configure_logging(stream=sink, secret_values=[secret, "other-secret-xyz"])
    structlog.contextvars.bind_contextvars(request_id="r1", path=f"/p/{secret}/q")
    logs.emit_request_event(status=200, remote_addr=secret, endpoint="/p/<x>")
    raw = sink.getvalue()
    assert secret.encode() not in raw and json.dumps(secret)[1:-1].encode() not in raw
    (event,) = _events(sink)
    assert event["path"] == f"/p/{logs.REDACTED}/q" and event["remote_addr"] == logs.REDACTED


def test_secret_named_fields_are_redacted_without_any_known_value(sink):
    logs.configure_logging(stream=sink)
    logs.emit_request_event(status=200, token="abc", Password="def")
    (event,) = _events(sink)
    assert event["token"] == logs.REDACTED and event["Password"] == logs.REDACTED


def test_the_line_carries_context_static_fields_and_a_utc_microsecond_timestamp(sink):
    logs.configure_logging(stream=sink, service="svc-x")
    structlog.contextvars.bind_contextvars(request_id="r2", method="GET")
    for _ in range(3):
        logs.emit_request_event(status=204)
    events = _events(sink)
    assert len(events) == 3 and sink.getvalue().count(b"\n") == 3
    for event in events:
        assert (event["event"], event["level"], event["service"]) == ("request", "info", "svc-x")
        assert (event["request_id"], event["method"], event["status"]) == ("r2", "GET", 204)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["timestamp"]), event["timestamp"]


def test_the_timestamp_is_the_clock_in_utc(monkeypatch):
    monkeypatch.setattr(logs.time, "time_ns", lambda: 1_800_000_000_000_042_999)
    monkeypatch.setattr(logs, "_SECOND", (-1, ""))
    assert logs._timestamp() == "2027-01-15T08:00:00.000042Z"
    monkeypatch.setattr(logs.time, "time_ns", lambda: 1_800_000_001_500_000_000)
    assert logs._timestamp() == "2027-01-15T08:00:01.500000Z"


def test_the_context_read_from_structlogs_registry_is_what_structlog_itself_returns():
    """The line reads structlog's own ContextVar registry (a private name); this pins it to the public API."""
    assert logs._context_fields is logs._fields_from_registry  # this structlog has the registry
    foreign = contextvars.ContextVar("not_structlog_request")

    def both() -> list[dict]:
        return [logs._fields_from_registry(), logs._fields_from_walk(), structlog.contextvars.get_contextvars()]

    def in_fresh_context() -> list[list[dict]]:
        seen = []
        foreign.set("flask-like value")
        structlog.contextvars.bind_contextvars(request_id="c1", method="GET", path="/x", user_id=7)
        seen.append(both())
        structlog.contextvars.unbind_contextvars("user_id")
        seen.append(both())
        structlog.contextvars.clear_contextvars()
        seen.append(both())
        structlog.contextvars.bind_contextvars(trace_id="ab" * 16)
        seen.append(both())
        return seen

    seen = contextvars.copy_context().run(in_fresh_context)
    for registry, walk, public in seen:
        assert registry == walk == public
    assert [s[0] for s in seen] == [
        {"request_id": "c1", "method": "GET", "path": "/x", "user_id": 7},
        {"request_id": "c1", "method": "GET", "path": "/x"},
        {},
        {"trace_id": "ab" * 16},
    ]


def test_the_registry_is_read_live_when_logs_is_imported_before_anything_was_bound():
    """In a fresh interpreter structlog's registry is empty when logs.py is imported: keys bound later are seen."""
    code = (
        "import structlog\n"
        "from velocity_app import logs\n"
        "structlog.contextvars.bind_contextvars(request_id='late-1', method='GET')\n"
        "assert logs._context_fields() == {'request_id': 'late-1', 'method': 'GET'}, logs._context_fields()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
