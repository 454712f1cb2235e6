"""Every bad request body gets a 4xx naming the problem: never a 500, never a traceback."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.postgres

LIMIT = 65536  # MAX_REQUEST_BYTES default


@pytest.fixture
def prod_client(app):
    """A client of the app as it runs in production: errors become responses, not test exceptions."""
    app.config["TESTING"] = False
    return app.test_client()


def _no_trace(logs) -> None:
    text = logs.text()
    assert "Traceback" not in text
    assert not [e for e in logs.events() if e.get("level") in ("error", "critical")], text[-2000:]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"page": "/a\u0000b"}, "page", "NUL"),
        ({"page": "/ok", "referrer": "\u0000"}, "referrer", "NUL"),
        ({"page": "/a\ud800"}, "page", "surrogate"),
        ({"page": "/ok", "referrer": "x\udfff"}, "referrer", "surrogate"),
    ],
)
def test_text_the_database_cannot_store_is_refused_naming_the_field(prod_client, logs, payload, field, words):
    # json.dumps escapes the NUL and lone surrogates as \u0000 / \ud800, as a client would send them.
    resp = prod_client.post("/api/visits", data=json.dumps(payload), content_type="application/json")
    assert resp.status_code == 400, resp.data
    body = resp.get_json()
    assert body["field"] == field and words in body["message"]
    assert prod_client.get("/api/visits").get_json()["total"] == 0
    _no_trace(logs)


class CountingStream(io.BytesIO):
    """A request body that records whether anyone read it."""

    def __init__(self, size: int) -> None:
        super().__init__(b"[" * size)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        chunk = super().readline(size)
        self.bytes_read += len(chunk)
        return chunk


def test_body_over_the_limit_is_refused_with_413_before_it_is_read(prod_client, logs):
    stream = CountingStream(20 * 1024 * 1024)
    resp = prod_client.post(
        "/api/visits", input_stream=stream, content_length=20 * 1024 * 1024, content_type="application/json"
    )
    assert resp.status_code == 413
    assert "MAX_REQUEST_BYTES" in resp.get_json()["message"]
    assert stream.bytes_read == 0
    _no_trace(logs)


def test_body_at_the_limit_is_read(prod_client):
    body = json.dumps({"page": "/p", "referrer": None, "pad": "x" * (LIMIT - 60)}).encode()
    assert len(body) <= LIMIT
    resp = prod_client.post("/api/visits", data=body, content_type="application/json")
    assert resp.status_code == 201


def test_json_nested_too_deep_for_the_parser_is_a_400(prod_client, logs):
    resp = prod_client.post("/api/visits", data="[" * (LIMIT - 1), content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["field"] == "body"
    _no_trace(logs)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
visit_bodies = st.fixed_dictionaries(
    {}, optional={"page": json_values | st.text(), "referrer": json_values | st.text()}
) | json_values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=visit_bodies)
def test_any_json_body_gets_no_5xx(prod_client, logs, body):
    resp = prod_client.post("/api/visits", data=json.dumps(body), content_type="application/json")
    assert resp.status_code in (201, 400), (body, resp.data)
    _no_trace(logs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=512), content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_any_bytes_get_no_5xx(prod_client, logs, raw, content_type):
    resp = prod_client.post("/api/visits", data=raw, content_type=content_type or None)
    assert 400 <= resp.status_code < 500 or resp.status_code == 201, (raw, resp.data)
    _no_trace(logs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.text(max_size=12), offset=st.text(max_size=12))
def test_any_paging_parameters_get_no_5xx(prod_client, logs, limit, offset):
    resp = prod_client.get("/api/visits", query_string={"limit": limit, "offset": offset})
    assert resp.status_code in (200, 400), (limit, offset, resp.data)
    _no_trace(logs)
