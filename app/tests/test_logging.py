"""Request logging middleware: JSON lines with request context, ids echoed, no secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from velocity_app.logs import REDACTED, stdlib_formatter

pytestmark = pytest.mark.postgres
FIELDS = {"timestamp", "level", "event", "service", "request_id", "method", "path", "status", "duration_ms", "remote_addr"}


def _request_events(logs):
    return [e for e in logs.events() if e.get("event") == "request"]


def test_one_json_event_per_request_with_the_documented_fields(client, logs):
    client.get("/healthz")
    client.post("/api/visits", json={"page": "/a"})
    events = _request_events(logs)
    assert len(events) == 2
    for event in events:
        assert FIELDS <= set(event), FIELDS - set(event)
        assert event["level"] == "info" and isinstance(event["duration_ms"], float)
    assert (events[0]["method"], events[0]["path"], events[0]["status"]) == ("GET", "/healthz", 200)
    assert (events[1]["method"], events[1]["status"]) == ("POST", 201)


def test_request_id_is_taken_from_the_header_and_echoed(client, logs):
    resp = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    assert _request_events(logs)[0]["request_id"] == "abc-123"


@pytest.mark.parametrize("header", [None, "bad id with spaces", "x" * 200])
def test_request_id_is_generated_when_absent_or_unsafe(client, logs, header):
    headers = {"X-Request-ID": header} if header else {}
    resp = client.get("/healthz", headers=headers)
    rid = resp.headers["X-Request-ID"]
    assert rid != header and len(rid) == 32
    assert _request_events(logs)[0]["request_id"] == rid


def test_blueprint_logs_carry_the_request_context(client, logs):
    resp = client.post("/api/visits", json={"page": "/ctx"}, headers={"X-Request-ID": "ctx-1"})
    recorded = [e for e in logs.events() if e.get("event") == "visit_recorded"]
    assert recorded and recorded[0]["request_id"] == "ctx-1"
    assert recorded[0]["visit_id"] == resp.get_json()["id"]


def test_context_does_not_leak_between_requests(client, logs):
    client.get("/healthz", headers={"X-Request-ID": "first"})
    client.get("/healthz", headers={"X-Request-ID": "second"})
    assert [e["request_id"] for e in _request_events(logs)] == ["first", "second"]


def test_secret_values_never_reach_the_logs(app, client, logs, canaries):
    secret_key, db_password = canaries
    client.get("/healthz", headers={"X-Request-ID": "leak-check"})
    client.post("/api/visits", json={"page": secret_key})  # user data that equals a secret
    logging.getLogger("velocity.test").warning("oops %s and %s", secret_key, db_password)
    text = logs.text()
    assert secret_key not in text and db_password not in text
    assert REDACTED in text


def test_logging_can_be_switched_off_for_requests_only(migrated, logs):
    from velocity_app import create_app

    app = create_app({**migrated, "LOG_REQUESTS": "false"}, log_stream=logs)
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200 and "X-Request-ID" in resp.headers
    assert _request_events(logs) == []
    app.extensions["velocity"].engine.dispose()


def test_gunicorn_records_render_as_the_same_json_shape():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(stdlib_formatter("velocity-app", ["s3cr3t-canary"]))
    log = logging.getLogger("gunicorn.error.test")
    log.addHandler(handler)
    log.propagate = False
    log.error("Worker failed to boot: %s", "s3cr3t-canary")
    event = json.loads(stream.getvalue())
    assert event["level"] == "error" and event["logger"] == "gunicorn.error.test"
    assert event["event"] == f"Worker failed to boot: {REDACTED}"
    assert {"timestamp", "service"} <= set(event)


def test_request_events_follow_the_log_level(migrated, logs):
    from velocity_app import create_app

    app = create_app({**migrated, "LOG_LEVEL": "WARNING"}, log_stream=logs)
    app.test_client().get("/healthz")
    assert _request_events(logs) == []
    app.extensions["velocity"].engine.dispose()
    create_app({**migrated, "LOG_LEVEL": "INFO"}, log_stream=logs).test_client().get("/healthz")
    assert len(_request_events(logs)) == 1
