"""Gunicorn keeps serving for shutdown_delay seconds after SIGTERM, then drains and exits (real Gunicorn);
every answer names the instance that gave it (X-Served-By).

In a pod the kubelet's SIGTERM and kube-proxy's removal of the endpoint race: connections still routed to the
pod for a moment must be served, not refused (benchmarks/zero_downtime.py measures the rolling update).
/healthz needs no database, so none is started here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int | str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as resp:
            return resp.status
    except OSError as exc:
        return type(getattr(exc, "reason", exc)).__name__


def _serve(tmp_path, **extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")}
    env = {**keep, "SECRET_KEY": "shutdown-test-key-0123456789abcdef", "GUNICORN_WORKERS": "1",
           "DATABASE_URL": "postgresql://nobody:unused@127.0.0.1:1/none", "GUNICORN_BIND": f"127.0.0.1:{port}", **extra}
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:velocity_app.gunicorn_conf",
                             "velocity_app.wsgi:app"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 30
    while _status(url) != 200:
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
        assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
        time.sleep(0.2)
    return proc, url


def test_after_sigterm_gunicorn_serves_for_the_delay_then_stops(tmp_path):
    proc, url = _serve(tmp_path, GUNICORN_SHUTDOWN_DELAY="3")
    try:
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        during = []
        while time.monotonic() - signalled < 2:  # well inside the 3 s delay, however slow the machine
            during.append(_status(url))
            time.sleep(0.2)
        assert during and set(during) == {200}, during
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - signalled >= 3
        assert _status(url) == "ConnectionRefusedError"
        assert "serving 3.0 s more while the endpoint is withdrawn" in (tmp_path / "gunicorn.log").read_text()
    finally:
        proc.kill()
        proc.wait()


def test_outside_kubernetes_sigterm_stops_at_once_by_default(tmp_path):
    proc, url = _serve(tmp_path)  # no KUBERNETES_SERVICE_HOST, no GUNICORN_SHUTDOWN_DELAY: delay 0
    try:
        # Which instance answered: the host's name (a pod's name in Kubernetes).
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as resp:
            assert resp.headers["X-Served-By"] == socket.gethostname()
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert proc.wait(timeout=30) == 0
        assert "while the endpoint is withdrawn" not in (tmp_path / "gunicorn.log").read_text()
        assert time.monotonic() - signalled < 20  # the drain of an idle worker, not a delay
    finally:
        proc.kill()
        proc.wait()
