"""A Gunicorn worker killed with SIGKILL loses no request line: each line is written when its request is
answered, one write system call, no buffer (real Gunicorn, kill -9). /healthz needs no database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REQUESTS = 50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, request_id: str | None = None) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers={"X-Request-ID": request_id} if request_id else {})
    with opener.open(req, timeout=5) as resp:
        return resp.status


def _workers(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def test_a_worker_killed_with_sigkill_has_written_the_line_of_every_request_it_answered(tmp_path):
    port = _free_port()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")}
    env = {**keep, "SECRET_KEY": "durability-test-key-0123456789abcdef", "GUNICORN_WORKERS": "1",
           "GUNICORN_THREADS": "4", "DATABASE_URL": "postgresql://nobody:unused@127.0.0.1:1/none",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "LOG_REQUESTS": "true"}
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:velocity_app.gunicorn_conf",
                                 "velocity_app.wsgi:app"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(url)
                break
            except OSError:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
                time.sleep(0.2)
        (worker,) = _workers(proc.pid)
        for i in range(REQUESTS):
            assert _get(url, f"durable-{i}") == 200
        os.kill(worker, signal.SIGKILL)  # no atexit, no flush: only what was already written survives
        deadline = time.monotonic() + 30
        while worker in _workers(proc.pid):
            assert time.monotonic() < deadline, "the killed worker was not reaped"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    answered = set()
    for line in log_path.read_bytes().splitlines():
        if line.startswith(b"{"):
            event = json.loads(line)
            if event.get("event") == "request" and str(event.get("request_id", "")).startswith("durable-"):
                answered.add(event["request_id"])
    assert answered == {f"durable-{i}" for i in range(REQUESTS)}, f"lost: {REQUESTS - len(answered)} line(s)"
