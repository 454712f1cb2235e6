"""Liveness (/healthz) and readiness (/readyz: database reachable, schema current)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from velocity_app.db import schema_revision
from velocity_app.logs import get_logger
from velocity_app.migrate import schema_head

bp = Blueprint("health", __name__)
log = get_logger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    engine = current_app.extensions["velocity"].engine
    try:
        revision = schema_revision(engine)
    except SQLAlchemyError as exc:
        # The class name is enough to act on; the message may carry host names.
        log.warning("readiness_failed", check="database", error=type(exc).__name__)
        return jsonify(status="unavailable", checks={"database": "unreachable"}), 503
    head = schema_head()
    if revision != head:
        log.warning("readiness_failed", check="schema", revision=revision, expected=head)
        return (
            jsonify(
                status="unavailable",
                checks={"database": "ok", "schema": f"at {revision or 'none'}, expected {head}: run `velocity-app migrate`"},
            ),
            503,
        )
    return jsonify(status="ready", checks={"database": "ok", "schema": revision})
