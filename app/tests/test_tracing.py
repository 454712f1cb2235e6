"""Optional OpenTelemetry tracing: one span per request, trace id in the logs."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from velocity_app import create_app

pytestmark = pytest.mark.postgres


def test_no_tracer_without_an_endpoint(app):
    assert app.extensions["velocity"].tracer is None


def test_each_request_becomes_a_span_with_route_and_status(migrated, logs):
    exporter = InMemorySpanExporter()
    app = create_app(migrated, span_exporter=exporter, log_stream=logs)
    app.test_client().get("/healthz", headers={"X-Request-ID": "trace-1"})
    spans = exporter.get_finished_spans()
    assert len(spans) == 1
    span = spans[0]
    assert span.name == "GET /healthz"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["velocity.request_id"] == "trace-1"
    request_log = next(e for e in logs.events() if e.get("event") == "request")
    assert request_log["trace_id"] == format(span.context.trace_id, "032x")
    app.extensions["velocity"].engine.dispose()


def test_otlp_endpoint_turns_tracing_on(migrated, logs):
    app = create_app({**migrated, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, log_stream=logs)
    assert app.extensions["velocity"].tracer is not None
    app.extensions["velocity"].engine.dispose()
