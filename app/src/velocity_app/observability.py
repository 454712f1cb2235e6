"""Per-request context, JSON request log, Prometheus metrics and optional tracing."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

from velocity_app.config import Settings
from velocity_app.logs import emit_request_event

REQUEST_ID_HEADER = "X-Request-ID"
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


def instrument(app: Flask, settings: Settings, metrics: Metrics, tracer: Any = None) -> None:
    """Bind request context, then log and measure each request once it is answered."""

    @app.before_request
    def _start() -> None:
        structlog.contextvars.clear_contextvars()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.request_started = time.perf_counter()
        structlog.contextvars.bind_contextvars(
            request_id=g.request_id, method=request.method, path=request.path
        )
        if tracer is not None:
            g.span = tracer.start_span(f"{request.method} {request.path}")
            g.span.set_attribute("http.request.method", request.method)
            g.span.set_attribute("url.path", request.path)
            g.span.set_attribute("velocity.request_id", g.request_id)
            ctx = g.span.get_span_context()
            structlog.contextvars.bind_contextvars(trace_id=format(ctx.trace_id, "032x"))

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
        if settings.log_requests:
            emit_request_event(
                status=response.status_code,
                duration_ms=round(elapsed * 1000, 3),
                remote_addr=request.remote_addr,
                endpoint=endpoint,
            )
        span = g.get("span")
        if span is not None:
            span.set_attribute("http.response.status_code", response.status_code)
            span.set_attribute("http.route", endpoint)
            span.end()
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()


def make_tracer(settings: Settings, exporter: Any = None) -> Any:
    """An OpenTelemetry tracer when an OTLP endpoint (or a test exporter) is given, else None."""
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
    return provider.get_tracer("velocity_app")
