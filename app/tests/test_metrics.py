"""Prometheus metrics: request counts and latency buckets by endpoint and status."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.postgres


def _samples(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.get_data(as_text=True))
        for s in family.samples
    }


def test_requests_are_counted_by_endpoint_method_and_status(client):
    for _ in range(3):
        client.get("/healthz")
    client.post("/api/visits", json={})
    samples = _samples(client)
    ok = ("http_requests_total", (("endpoint", "/healthz"), ("method", "GET"), ("status", "200")))
    bad = ("http_requests_total", (("endpoint", "/api/visits"), ("method", "POST"), ("status", "400")))
    assert samples[ok] == 3
    assert samples[bad] == 1


def test_latency_histogram_has_buckets_per_endpoint(client):
    client.get("/healthz")
    samples = _samples(client)
    buckets = [k for k in samples if k[0] == "http_request_duration_seconds_bucket" and ("endpoint", "/healthz") in k[1]]
    assert len(buckets) >= 10
    count = samples[("http_request_duration_seconds_count", (("endpoint", "/healthz"), ("method", "GET")))]
    assert count == 1


def test_unknown_paths_share_one_label_to_bound_cardinality(client):
    for i in range(5):
        client.get(f"/random-{i}")
    samples = _samples(client)
    unmatched = [k for k in samples if k[0] == "http_requests_total" and ("endpoint", "<unmatched>") in k[1]]
    assert len(unmatched) == 1 and samples[unmatched[0]] == 5
