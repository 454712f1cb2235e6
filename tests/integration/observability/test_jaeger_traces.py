"""A trace that starts at the caller: the app under Gunicorn (OTLP/HTTP to the project's Jaeger)
continues the caller's ``traceparent``; Jaeger's query API shows the request span as the
caller's child with the database spans under it, and the request's log line carries the
same trace id."""

from __future__ import annotations

import secrets

import pytest

from tests.fixtures.observability import http, serve_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _tags(span: dict) -> dict:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def _parent(span: dict) -> str | None:
    refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def test_jaeger_has_the_callers_trace_with_request_and_database_spans(jaeger, app_database, tmp_path):
    trace_id = "7" + secrets.token_hex(16)[1:]  # high half non-zero: Jaeger prints all 32 digits
    caller_span = secrets.token_hex(8)
    request_id = "jaeger-" + secrets.token_hex(6)
    extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
             "SERVICE_NAME": "velocity-app-jaeger-test"}
    with serve_app(app_database, tmp_path, workers=2, extra=extra) as served:
        status, headers, _ = http(served.url + "/api/visits", method="POST", body={"page": "/traced"},
                                  headers={"traceparent": f"00-{trace_id}-{caller_span}-01", "X-Request-ID": request_id})
        assert status == 201
        assert headers["X-Request-ID"] == request_id
        trace = jaeger.trace(trace_id)
        # Both the server span and the database spans may arrive in separate batches.
        for _ in range(20):
            if len(trace["spans"]) >= 3:
                break
            trace = jaeger.trace(trace_id)
        events = served.events()

    spans = trace["spans"]
    assert {s["traceID"] for s in spans} == {trace_id}
    services = {p["serviceName"] for p in trace["processes"].values()}
    assert services == {"velocity-app-jaeger-test"}
    server = [s for s in spans if _tags(s).get("span.kind") == "server"]
    assert len(server) == 1, [(s["operationName"], _tags(s).get("span.kind")) for s in spans]
    server = server[0]
    assert server["operationName"] == "POST /api/visits"
    assert _parent(server) == caller_span  # the request span is the caller's child
    assert _tags(server)["velocity.request_id"] == request_id
    assert _tags(server)["http.status_code"] == 201
    db = [s for s in spans if _tags(s).get("span.kind") == "client"]
    assert {_tags(s)["db.operation.name"] for s in db} == {"INSERT", "SELECT"}
    assert all(_parent(s) == server["spanID"] for s in db)  # database spans nest under the request span

    request_lines = [e for e in events if e.get("event") == "request" and e.get("request_id") == request_id]
    assert len(request_lines) == 1
    assert request_lines[0]["trace_id"] == trace_id
    assert request_lines[0]["span_id"] == server["spanID"]
