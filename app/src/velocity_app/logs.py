"""Structured JSON logging for the service and for Gunicorn.

One configuration for the whole process: structlog renders JSON lines with
orjson; stdlib records (Gunicorn, SQLAlchemy, Alembic, Flask) pass through a
``ProcessorFormatter`` that runs the same processors, so every line on stdout
has the same shape. A redaction processor replaces any configured secret
value with ``[REDACTED]`` wherever it would appear in an event.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

import orjson
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
_SECRET_KEY_NAMES = ("password", "secret", "secret_key", "token", "database_url", "authorization")
# Exact-match lookups are cheaper than lower-casing every key of every event.
_SECRET_KEYS = frozenset(
    form for name in _SECRET_KEY_NAMES for form in (name, name.upper(), name.title(), name.capitalize())
)


class Redactor:
    """Replace known secret values, and values under secret-looking keys.

    This runs on every log line, so the common case (nothing to redact) is one set
    intersection and one substring search per secret over the event's strings joined.
    """

    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        # Longest first, so a password inside a URL is replaced as part of the URL.
        self.values = tuple(sorted({v for v in secret_values if v}, key=len, reverse=True))
        # Each value as it appears inside a JSON string (orjson's escaping, no quotes).
        self.escaped = tuple(orjson.dumps(v)[1:-1] for v in self.values)

    def _scrub(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        for key in _SECRET_KEYS.intersection(event_dict):
            event_dict[key] = REDACTED
        if self.values:
            # NUL never occurs in a secret, so no value can match across two fields.
            joined = "\0".join([v for v in event_dict.values() if type(v) is str])
            if any(value in joined for value in self.values):
                for key, value in event_dict.items():
                    if isinstance(value, str):
                        event_dict[key] = self._scrub(value)
        return event_dict


class _Sink:
    """Where JSON lines go. Loggers cached on first use keep a reference to this
    object, so pointing it at another stream reaches them too (tests do that)."""

    def __init__(self) -> None:
        self.target: IO[bytes] = sys.stdout.buffer

    def write(self, data: bytes) -> int:
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


# One sink and one redactor per process, shared by structlog and stdlib handlers,
# so reconfiguring updates loggers that cache_logger_on_first_use already built.
_SINK = _Sink()
_REDACTOR = Redactor()
_STATE: dict[str, Any] = {"level": logging.INFO, "service": "velocity-app"}


def _orjson_str(obj: Any, **_kw: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def _shared_processors(service: str) -> list[Processor]:
    def add_service(_l: WrappedLogger, _m: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_service,
    ]


def stdlib_formatter(service: str = "velocity-app", secret_values: Iterable[str] = ()) -> logging.Formatter:
    """A formatter that renders stdlib records (Gunicorn's too) as our JSON lines."""
    return _formatter(service, Redactor(secret_values))


def _formatter(service: str, redactor: Redactor) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(service), structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            structlog.processors.JSONRenderer(serializer=_orjson_str),
        ],
    )


def configure_logging(
    level: str = "INFO",
    service: str = "velocity-app",
    secret_values: Iterable[str] = (),
    stream: IO[bytes] | None = None,
) -> None:
    """Configure structlog and the stdlib root logger once for this process.

    ``stream`` is a binary stream (default: stdout); tests pass a BytesIO.
    """
    numeric = logging.getLevelName(level.upper())
    _SINK.target = stream if stream is not None else sys.stdout.buffer
    fresh = Redactor(secret_values)
    _REDACTOR.values, _REDACTOR.escaped = fresh.values, fresh.escaped
    _STATE.update(level=numeric, service=service)

    structlog.configure(
        processors=[
            *_shared_processors(service),
            structlog.processors.format_exc_info,
            _REDACTOR,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(_SINK),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(_TextOverBytes(_SINK))
    handler.setFormatter(_formatter(service, _REDACTOR))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Flask's app.logger would otherwise add its own non-JSON handler.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Alembic announces each of its autogenerate plugins at INFO when its script module loads.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class _TextOverBytes:
    """Let a stdlib StreamHandler write text lines to a binary stream."""

    def __init__(self, out: _Sink) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text.encode())
        return len(text)

    def flush(self) -> None:
        self._out.flush()


def _fields_from_registry() -> dict[str, Any]:
    """structlog's context-local fields, as ``structlog.contextvars.get_contextvars`` returns them.

    structlog keeps one ContextVar per key it was ever given (``_CONTEXT_VARS``); reading just
    those skips every other variable of a request thread's context (Flask's, Werkzeug's,
    OpenTelemetry's), which get_contextvars walks twice. Unit tests compare the two, so a
    structlog that changes this falls back to the full walk or fails a test, never drops a field.
    """
    fields = {}
    for name, var in _STRUCTLOG_VARS.items():
        value = var.get()
        if value is not Ellipsis:
            fields[name[_PREFIX_LEN:]] = value
    return fields


def _fields_from_walk() -> dict[str, Any]:
    """The same, walking the whole context once: for a structlog without ``_CONTEXT_VARS``."""
    return {
        var.name[_PREFIX_LEN:]: value
        for var, value in contextvars.copy_context().items()
        if value is not Ellipsis and var.name.startswith(_PREFIX)
    }


_PREFIX = structlog.contextvars.STRUCTLOG_KEY_PREFIX
_PREFIX_LEN = len(_PREFIX)
# The registry itself (structlog adds to it in place), not a copy: it is empty until the first bind.
_STRUCTLOG_VARS: dict[str, contextvars.ContextVar[Any]] = getattr(structlog.contextvars, "_CONTEXT_VARS", None)  # type: ignore[assignment]
_context_fields = _fields_from_registry if isinstance(_STRUCTLOG_VARS, dict) else _fields_from_walk
# (whole second, "YYYY-MM-DDTHH:MM:SS"): formatting the date once a second, not per line. One tuple, replaced
# whole and read once, so a request thread never pairs one second's number with another second's text.
_SECOND: tuple[int, str] = (-1, "")


def _timestamp() -> str:
    """UTC ISO-8601 with microseconds and a Z, as the TimeStamper's lines have
    (always six digits; ``isoformat`` drops them on a whole second)."""
    global _SECOND
    second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    cached = _SECOND
    if second != cached[0]:
        cached = _SECOND = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{nanoseconds // 1000:06d}Z"


def emit_request_event(**fields: Any) -> None:
    """Write the per-request `request` event.

    It runs once per request, so it is rendered directly rather than through
    structlog's generic chain: the same fields (request context, level, timestamp,
    service), the same redaction and the same orjson renderer. Redaction looks
    for each secret in the rendered line first (JSON escapes a string character by
    character, so a secret inside any value appears there in its escaped form) and
    only runs the field-by-field scrub when one does. The line is written with one
    ``write`` call, unbuffered: a worker killed with SIGKILL loses no line of a
    request it answered. benchmarks/logging_overhead.py measures what it costs.
    """
    if _STATE["level"] > logging.INFO:
        return
    event = _context_fields()
    event.update(fields)
    event["event"] = "request"
    event["level"] = "info"
    event["timestamp"] = _timestamp()
    if "service" not in event:
        event["service"] = _STATE["service"]
    line = orjson.dumps(event, default=str, option=orjson.OPT_APPEND_NEWLINE)
    scrub = not _SECRET_KEYS.isdisjoint(event)
    if not scrub:
        for value in _REDACTOR.escaped:  # a plain loop: cheaper than any() over a generator
            if value in line:
                scrub = True
                break
    if scrub:
        _REDACTOR(None, "info", event)
        line = orjson.dumps(event, default=str, option=orjson.OPT_APPEND_NEWLINE)
    target = _SINK.target
    target.write(line)
    target.flush()


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
