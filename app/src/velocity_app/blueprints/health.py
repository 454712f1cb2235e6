"""Liveness (/healthz) and readiness (/readyz: database reachable, schema within the window)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from velocity_app.db import schema_revision, schema_window
from velocity_app.logs import get_logger
from velocity_app.migrate import known_revisions, schema_head

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
    if revision == head:
        return jsonify(status="ready", checks={"database": "ok", "schema": revision})
    if revision is None or revision in known_revisions():
        problem = f"at {revision or 'none'}, behind this release's {head}: run `velocity-app migrate`"
        window = None
    else:
        # Ahead of this code: the newer release's migration recorded which code heads still run.
        try:
            window = schema_window(engine)
        except SQLAlchemyError as exc:
            log.warning("readiness_failed", check="database", error=type(exc).__name__)
            return jsonify(status="unavailable", checks={"database": "unreachable"}), 503
        if window is not None and head in window:
            return jsonify(status="ready", checks={
                "database": "ok",
                "schema": f"at {revision}, ahead of this release's {head}, within the compatibility window",
                "schema_window": window,
            })
        problem = (
            f"at {revision}, ahead of this release's {head} and outside the compatibility window "
            f"(it admits {', '.join(window) if window else revision + ' only'}): a migration this release "
            f"cannot live with ran; deploy the newer release, or downgrade first with the newer image: "
            f"`velocity-app migrate --downgrade {head}` (runbook: database-migration rollback)"
        )
    log.warning("readiness_failed", check="schema", revision=revision, expected=head, window=window)
    return jsonify(status="unavailable", checks={"database": "ok", "schema": problem}), 503
