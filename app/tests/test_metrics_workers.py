"""Prometheus multi-process mode under real Gunicorn: /metrics counts every worker's requests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from tests.fixtures.observability import http, serve_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HEALTHZ_200 = 'http_requests_total{endpoint="/healthz",method="GET",status="200"}'
BATCH = 20


def _per_worker_healthz(served, tmp_path) -> dict[int, float]:
    """Each worker's own /healthz count, read from its counter file alone (public collector API)."""
    counts = {}
    for path in served.multiproc_dir.glob("counter_*.db"):
        alone = tmp_path / f"one-{path.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(alone))
        match = re.search(re.escape(HEALTHZ_200) + r" (\S+)", generate_latest(registry).decode())
        counts[int(path.stem.rsplit("_", 1)[1])] = float(match.group(1)) if match else 0.0
    return counts


def _send(url: str, n: int) -> None:
    # Fresh connections from 4 threads at once, so idle workers compete for them.
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: http(url + "/healthz")[0], range(n)))
    assert statuses == [200] * n


def test_metrics_add_up_every_gunicorn_worker(migrated, tmp_path):
    with serve_app(migrated, tmp_path, workers=3) as served:
        # serve_app's own readiness probes (one or more, as the start-up took) are counted too.
        sent = sum(_per_worker_healthz(served, tmp_path).values())
        assert sent >= 1
        # Send until at least two workers have served requests (bounded), counting what was sent.
        while True:
            _send(served.url, BATCH)
            sent += BATCH
            per_worker = _per_worker_healthz(served, tmp_path)
            if sum(1 for v in per_worker.values() if v) >= 2 or sent > 20 * BATCH:
                break
        busy = {pid: n for pid, n in per_worker.items() if n}
        assert len(busy) >= 2, f"one worker served everything: {per_worker}"
        assert sum(per_worker.values()) == sent
        # /metrics (answered by whichever worker) reports the sum over workers, not its own share.
        for _ in range(5):
            assert served.metric(HEALTHZ_200) == sent
        body = http(served.url + "/metrics")[2].decode()
        bucket = re.search(r'http_request_duration_seconds_count\{endpoint="/healthz",method="GET"\} (\S+)', body)
        assert bucket and float(bucket.group(1)) == sent

        # A worker that dies is marked dead (child_exit) and replaced; its counts are kept.
        victim = max(busy, key=busy.get)
        os.kill(victim, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while victim in _live_workers(served.proc.pid) or len(_live_workers(served.proc.pid)) < 3:
            assert time.monotonic() < deadline, "gunicorn did not replace the stopped worker"
            time.sleep(0.2)
        _send(served.url, BATCH)
        sent += BATCH
        assert served.metric(HEALTHZ_200) == sent
    assert served.proc.returncode == 0


def _live_workers(master: int) -> set[int]:
    children = set()
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master:
                children.add(int(proc))
    return children
