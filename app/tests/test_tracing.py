"""OpenTelemetry tracing through opentelemetry-instrumentation-flask: one server span per
request that continues the caller's ``traceparent``, database spans nested under it,
exceptions recorded, and the trace id in the request's log line."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from velocity_app import create_app

pytestmark = pytest.mark.postgres

CALLER_TRACE_ID = "4bf92f3577b34a0e9a0c1f2d3e4f5a6b"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"


@pytest.fixture
def traced(migrated, logs):
    exporter = InMemorySpanExporter()
    app = create_app(migrated, span_exporter=exporter, log_stream=logs)
    yield app, exporter
    app.extensions["velocity"].engine.dispose()


def _server_span(exporter: InMemorySpanExporter):
    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in exporter.get_finished_spans()]
    return servers[0]


def _request_event(logs) -> dict:
    return next(e for e in logs.events() if e.get("event") == "request")


def test_no_tracer_without_an_endpoint(app):
    assert app.extensions["velocity"].tracer is None
    assert app.extensions["velocity"].tracer_provider is None


def test_a_request_becomes_a_server_span_named_by_route(traced, logs):
    app, exporter = traced
    resp = app.test_client().get("/healthz", headers={"X-Request-ID": "trace-1"})
    assert resp.status_code == 200
    span = _server_span(exporter)
    assert span.name == "GET /healthz"
    assert span.attributes["http.route"] == "/healthz"
    assert span.attributes["http.status_code"] == 200
    assert span.attributes["velocity.request_id"] == "trace-1"
    assert span.parent is None  # no traceparent: a new trace starts here
    event = _request_event(logs)
    assert event["request_id"] == "trace-1"
    assert event["trace_id"] == format(span.context.trace_id, "032x")
    assert event["span_id"] == format(span.context.span_id, "016x")


def test_an_incoming_traceparent_is_continued(traced, logs):
    app, exporter = traced
    app.test_client().get("/healthz", headers={"traceparent": TRACEPARENT})
    span = _server_span(exporter)
    assert format(span.context.trace_id, "032x") == CALLER_TRACE_ID
    assert span.parent is not None and span.parent.is_remote
    assert format(span.parent.span_id, "016x") == CALLER_SPAN_ID
    assert _request_event(logs)["trace_id"] == CALLER_TRACE_ID


def test_database_spans_nest_under_the_request_span_without_values(traced):
    app, exporter = traced
    canary = "/page-value-never-in-a-span-91c2"
    resp = app.test_client().post("/api/visits", json={"page": canary}, headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 201
    server = _server_span(exporter)
    db_spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert [s.attributes["db.operation.name"] for s in db_spans] == ["INSERT", "SELECT"]  # insert, then refresh
    for span in db_spans:
        assert span.context.trace_id == server.context.trace_id
        assert span.parent.span_id == server.context.span_id
        assert span.attributes["db.system.name"] == "postgresql"
        assert canary not in str(dict(span.attributes)), "a parameter value reached a span"


def test_readiness_database_work_is_traced_too(traced):
    app, exporter = traced
    assert app.test_client().get("/readyz").status_code == 200
    server = _server_span(exporter)
    db_spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert db_spans and all(s.parent.span_id == server.context.span_id for s in db_spans)


def test_an_exception_is_recorded_on_the_request_span(migrated, logs):
    exporter = InMemorySpanExporter()
    app = create_app(migrated, span_exporter=exporter, log_stream=logs)

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom for the tracing test")

    resp = app.test_client().get("/boom", headers={"traceparent": TRACEPARENT})
    assert resp.status_code == 500
    span = _server_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    exceptions = [e for e in span.events if e.name == "exception"]
    assert exceptions and exceptions[0].attributes["exception.type"] == "RuntimeError"
    assert "boom for the tracing test" in exceptions[0].attributes["exception.message"]
    app.extensions["velocity"].engine.dispose()


def test_prometheus_scrapes_are_not_traced(traced, logs):
    app, exporter = traced
    assert app.test_client().get("/metrics").status_code == 200
    assert exporter.get_finished_spans() == ()
    assert "trace_id" not in _request_event(logs)


def test_otlp_endpoint_turns_tracing_on(migrated, logs):
    app = create_app({**migrated, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, log_stream=logs)
    assert app.extensions["velocity"].tracer is not None
    app.extensions["velocity"].engine.dispose()
