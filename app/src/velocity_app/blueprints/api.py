"""The site-visits API: record a visit, list visits page by page."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from velocity_app.db import Visit
from velocity_app.logs import get_logger

bp = Blueprint("api", __name__, url_prefix="/api")
log = get_logger(__name__)
MAX_URL_LENGTH = 2048


def _bad_request(field: str, problem: str) -> ResponseReturnValue:
    return jsonify(error="invalid_request", field=field, message=f"{field}: {problem}"), 400


def _json_body() -> object:
    """The request's JSON value, or None when the body is not JSON we can read.

    ``silent`` covers malformed JSON and a wrong Content-Type; nesting deep enough
    to exhaust the parser's recursion is refused the same way instead of failing
    the request with a 500.
    """
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def _unstorable(value: str) -> str | None:
    """Why PostgreSQL could not store ``value`` as text, or None when it can."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no unpaired surrogates such as \\ud800)"
    return None


def _query_int(name: str, default: int, minimum: int, maximum: int) -> int | str:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return "must be a whole number"
    if not minimum <= value <= maximum:
        return f"must be between {minimum} and {maximum}"
    return value


@bp.post("/visits")
def create_visit() -> ResponseReturnValue:
    body = _json_body()
    if not isinstance(body, dict):
        return _bad_request("body", 'send a JSON object such as {"page": "/home"}')
    page = body.get("page")
    if not isinstance(page, str) or not page.strip():
        return _bad_request("page", "required, a non-empty string")
    referrer = body.get("referrer")
    if referrer is not None and not isinstance(referrer, str):
        return _bad_request("referrer", "must be a string when given")
    for name, value in (("page", page), ("referrer", referrer)):
        if value is None:
            continue
        if len(value) > MAX_URL_LENGTH:
            return _bad_request(name, f"at most {MAX_URL_LENGTH} characters")
        problem = _unstorable(value)
        if problem:
            return _bad_request(name, problem)
    engine = current_app.extensions["velocity"].engine
    with Session(engine) as session, session.begin():
        visit = Visit(page=page.strip(), referrer=referrer)
        session.add(visit)
        session.flush()
        session.refresh(visit)
        payload = visit.as_dict()
    log.info("visit_recorded", visit_id=payload["id"])
    return jsonify(payload), 201


@bp.get("/visits")
def list_visits() -> ResponseReturnValue:
    max_limit = current_app.extensions["velocity"].settings.api_max_page_size
    limit = _query_int("limit", min(20, max_limit), 1, max_limit)
    if isinstance(limit, str):
        return _bad_request("limit", limit)
    offset = _query_int("offset", 0, 0, 10**9)
    if isinstance(offset, str):
        return _bad_request("offset", offset)
    engine = current_app.extensions["velocity"].engine
    with Session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Visit)) or 0
        rows = session.scalars(
            select(Visit).order_by(Visit.id.desc()).limit(limit).offset(offset)
        ).all()
        items = [v.as_dict() for v in rows]
    next_offset = offset + limit if offset + limit < total else None
    return jsonify(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)
