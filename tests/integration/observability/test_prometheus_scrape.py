"""The project's Prometheus scrapes the app under Gunicorn (2 workers, multi-process metrics):
the target is up, request counts by endpoint and status add up across workers, and the
latency histogram's buckets are filled."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.k8s import wait_until
from tests.fixtures.observability import http, serve_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# What the test sends: (method, path, body) -> (endpoint label, expected status), and how often.
REQUESTS = [
    (("GET", "/readyz", None), ("/readyz", "200"), 12),
    (("POST", "/api/visits", {"page": "/home"}), ("/api/visits", "201"), 9),
    (("POST", "/api/visits", {"page": ""}), ("/api/visits", "400"), 4),
    (("GET", "/api/visits?limit=abc", None), ("/api/visits", "400"), 3),
    (("GET", "/api/visits?limit=5", None), ("/api/visits", "200"), 5),
    (("GET", "/no-such-page", None), ("<unmatched>", "404"), 2),
]


def _send_all(url: str) -> Counter:
    calls = [(req, label) for req, label, n in REQUESTS for _ in range(n)]
    with ThreadPoolExecutor(4) as pool:  # fresh connections, several at once: both workers serve
        got = list(pool.map(lambda c: (c[1], http(url + c[0][1], method=c[0][0], body=c[0][2])[0]), calls))
    for (endpoint, expected), status in got:
        assert str(status) == expected, f"{endpoint}: {status}"
    return Counter(label for label, _ in got)


def test_prometheus_counts_every_workers_requests(prometheus, app_database, tmp_path):
    run = uuid.uuid4().hex[:10]
    with serve_app(app_database, tmp_path, workers=2) as served:
        prometheus.add_target(f"test-{run}", f"127.0.0.1:{served.port}", {"test_run": run})
        try:
            sel = f'test_run="{run}"'
            up = wait_until("up == 1 for the target", lambda: prometheus.query(f"up{{{sel}}} == 1"))
            assert up[0]["metric"]["job"] == "velocity-app"

            expected: Counter = Counter()
            for _ in range(5):  # until both workers have served some (bounded)
                expected += _send_all(served.url)
                if len(served.worker_pids()) >= 2:
                    break
            assert len(served.worker_pids()) >= 2, "a single worker served every request"

            query = f'sum by (endpoint, status) (http_requests_total{{{sel}, endpoint!~"/metrics|/healthz"}})'

            def counts_match():
                got = {(r["metric"]["endpoint"], r["metric"]["status"]): float(r["value"][1])
                       for r in prometheus.query(query)}
                return got if got == {k: float(v) for k, v in expected.items()} else None

            try:
                wait_until("the request counts in Prometheus", counts_match)
            except AssertionError:
                pytest.fail(f"Prometheus has {prometheus.query(query)}, sent {dict(expected)}")

            buckets = prometheus.query(
                f'sum by (le) (http_request_duration_seconds_bucket{{{sel}, endpoint="/api/visits", method="POST"}})')
            by_le = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in buckets)
            rounds = expected[("/readyz", "200")] // REQUESTS[0][2]
            posts = rounds * sum(n for (method, path, _), _, n in REQUESTS if method == "POST" and path == "/api/visits")
            assert by_le[-1] == (float("inf"), posts)
            values = [v for _, v in by_le]
            assert values == sorted(values), f"buckets are not cumulative: {by_le}"
            assert any(0 < v for le, v in by_le if le != float("inf")), f"no finite bucket filled: {by_le}"
            p99 = prometheus.query(
                f'histogram_quantile(0.99, sum by (le) (http_request_duration_seconds_bucket{{{sel}, endpoint="/readyz"}}))')
            assert p99 and 0 < float(p99[0]["value"][1]) <= 10
        finally:
            prometheus.remove_targets()
