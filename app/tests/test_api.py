"""The visits API: validation, storage in PostgreSQL, paging."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres


def test_post_visit_stores_it_and_returns_201(client):
    resp = client.post("/api/visits", json={"page": "/home", "referrer": "https://example.org/"})
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["page"] == "/home" and body["referrer"] == "https://example.org/"
    assert isinstance(body["id"], int) and body["created_at"]
    listed = client.get("/api/visits").get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (None, "body"),
        ({}, "page"),
        ({"page": ""}, "page"),
        ({"page": 5}, "page"),
        ({"page": "/x", "referrer": 3}, "referrer"),
        ({"page": "/" + "x" * 3000}, "page"),
    ],
)
def test_invalid_visit_is_rejected_naming_the_field(client, payload, field):
    resp = client.post("/api/visits", json=payload) if payload is not None else client.post("/api/visits", data="nope")
    assert resp.status_code == 400
    assert resp.get_json()["field"] == field
    assert client.get("/api/visits").get_json()["total"] == 0


def test_list_pages_newest_first(client):
    ids = [client.post("/api/visits", json={"page": f"/p{i}"}).get_json()["id"] for i in range(5)]
    first = client.get("/api/visits?limit=2").get_json()
    assert [v["id"] for v in first["items"]] == ids[::-1][:2]
    assert first["total"] == 5 and first["next_offset"] == 2
    last = client.get("/api/visits?limit=2&offset=4").get_json()
    assert [v["id"] for v in last["items"]] == [ids[0]]
    assert last["next_offset"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "offset=-1"])
def test_bad_paging_parameters_are_rejected(client, query):
    resp = client.get(f"/api/visits?{query}")
    assert resp.status_code == 400
    assert resp.get_json()["field"] == query.split("=")[0]


def test_unknown_route_answers_json_404(client):
    resp = client.get("/nope")
    assert resp.status_code == 404
    assert resp.get_json()["error"] == "not_found"
