"""Per-request context, JSON request log, Prometheus metrics and optional OpenTelemetry tracing."""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from typing import Any

import structlog
from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine, event

from velocity_app.config import Settings
from velocity_app.logs import emit_request_event

REQUEST_ID_HEADER = "X-Request-ID"
# Which instance answered (a pod's hostname is its name, so its ReplicaSet and revision): zero-downtime checks.
SERVED_BY_HEADER = "X-Served-By"
_SERVED_BY = socket.gethostname()
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Latency buckets in seconds, tuned for an API that should answer in milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def request_id_from(header: str | None) -> str:
    """Reuse a caller's X-Request-ID when it is safe to log, else make one."""
    if header and _VALID_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled, by endpoint, method and status.",
            ("endpoint", "method", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency in seconds, by endpoint and method.",
            ("endpoint", "method"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def instrument(app: Flask, settings: Settings, metrics: Metrics, tracer_provider: Any = None) -> None:
    """Bind request context, then log and measure each request once it is answered.

    With a tracer provider, ``opentelemetry-instrumentation-flask`` opens the request
    span (continuing an incoming ``traceparent``, recording exceptions) and makes it
    current before our hook runs, so the trace id is bound into the log context and
    spans opened inside the view (the database spans) nest under it.
    """
    if tracer_provider is not None:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        # Registers its before_request first (index 0): the span exists when _start runs.
        # Prometheus' scrapes are not traced (a trace every few seconds says nothing);
        # OTEL_PYTHON_FLASK_EXCLUDED_URLS, the library's own variable, replaces that choice.
        excluded = None if os.environ.get("OTEL_PYTHON_FLASK_EXCLUDED_URLS") else "/metrics$"
        FlaskInstrumentor.instrument_app(app, tracer_provider=tracer_provider, excluded_urls=excluded)

    @app.before_request
    def _start() -> None:
        structlog.contextvars.clear_contextvars()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()
        structlog.contextvars.bind_contextvars(
            request_id=g.request_id, method=request.method, path=request.path
        )
        if tracer_provider is not None:
            _bind_current_span(g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:  # a request that failed before our hook ran
            return response
        elapsed = time.perf_counter() - started
        endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        metrics.latency.labels(endpoint, request.method).observe(elapsed)
        response.headers[REQUEST_ID_HEADER] = g.request_id
        response.headers[SERVED_BY_HEADER] = _SERVED_BY
        if settings.log_requests:
            emit_request_event(
                status=response.status_code,
                duration_ms=round(elapsed * 1000, 3),
                remote_addr=request.remote_addr,
                endpoint=endpoint,
            )
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()


def _bind_current_span(request_id: str) -> None:
    from opentelemetry import trace

    span = trace.get_current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return
    span.set_attribute("velocity.request_id", request_id)
    structlog.contextvars.bind_contextvars(trace_id=format(ctx.trace_id, "032x"), span_id=format(ctx.span_id, "016x"))


def make_tracer_provider(settings: Settings, exporter: Any = None) -> Any:
    """An OpenTelemetry tracer provider when an OTLP endpoint (or a test exporter) is given, else None.

    The provider is the app's own (not the global one), so two apps in one process
    (tests) never share spans. Batch export settings follow the SDK's OTEL_BSP_* variables.
    """
    if exporter is None and not settings.otel_endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def trace_database(engine: Engine, tracer: Any) -> None:
    """One client span per SQL statement on ``engine``, child of whatever span is current.

    The statement is recorded as SQLAlchemy sends it, with placeholders: parameter
    values (user data) never reach a span. Errors are recorded on the span.
    """
    from opentelemetry.trace import SpanKind, Status, StatusCode

    url = engine.url
    attributes = {
        "db.system.name": "postgresql",
        "db.namespace": url.database or "",
        "server.address": url.host or "",
        "server.port": url.port or 5432,
    }

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = tracer.start_span(
            f"{operation} {attributes['db.namespace']}".strip(),
            kind=SpanKind.CLIENT,
            attributes={**attributes, "db.operation.name": operation, "db.query.text": statement},
        )
        if context is not None:
            context._velocity_span = span
        else:  # pragma: no cover - SQLAlchemy always passes a context for cursor executes
            span.end()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
        span = getattr(context, "_velocity_span", None)
        if span is not None:
            span.end()
            context._velocity_span = None

    @event.listens_for(engine, "handle_error")
    def _error(exception_context: Any) -> None:
        span = getattr(exception_context.execution_context, "_velocity_span", None)
        if span is not None:
            exc = exception_context.original_exception
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            exception_context.execution_context._velocity_span = None
