"""The application factory: the only way the service is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from flask import Flask, jsonify, request
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from velocity_app.config import Settings, load_settings
from velocity_app.db import make_engine
from velocity_app.logs import configure_logging
from velocity_app.observability import Metrics, instrument, make_tracer_provider, trace_database


@dataclass
class Velocity:
    """What the blueprints need, kept in ``app.extensions['velocity']``."""

    settings: Settings
    engine: Engine
    metrics: Metrics
    # The app's own tracer provider and tracer, or None when tracing is off.
    tracer_provider: Any
    tracer: Any


def create_app(
    environ: Mapping[str, str] | None = None,
    *,
    span_exporter: Any = None,
    log_stream: IO[bytes] | None = None,
) -> Flask:
    """Build the app from ``environ`` (default: ``os.environ``).

    Raises ``ConfigError`` naming the missing or bad variable.
    ``span_exporter`` and ``log_stream`` let tests capture traces and log lines.
    """
    settings = load_settings(environ)
    configure_logging(settings.log_level, settings.service_name, settings.secret_values(), stream=log_stream)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Rotation without downtime: signatures made with an earlier key still verify.
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        # Bodies over the limit are refused with 413 before they are read (see _refuse_large_bodies).
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )

    provider = make_tracer_provider(settings, span_exporter)
    velocity = Velocity(
        settings=settings,
        engine=make_engine(settings),
        metrics=Metrics(CollectorRegistry()),
        tracer_provider=provider,
        tracer=provider.get_tracer("velocity_app") if provider is not None else None,
    )
    if velocity.tracer is not None:
        trace_database(velocity.engine, velocity.tracer)
    app.extensions["velocity"] = velocity
    instrument(app, settings, velocity.metrics, provider)

    from velocity_app.blueprints import api, health, metrics

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(metrics.bp)

    @app.before_request
    def _refuse_large_bodies() -> None:
        # A declared length over the limit is refused before any view reads the body;
        # a chunked body is cut off by Werkzeug at MAX_CONTENT_LENGTH while it is read.
        length = request.content_length
        if length is not None and length > settings.max_request_bytes:
            raise RequestEntityTooLarge(
                f"request body of {length} bytes is over the limit of {settings.max_request_bytes} bytes "
                "(MAX_REQUEST_BYTES)"
            )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code

    return app
