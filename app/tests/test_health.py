"""Liveness and readiness against a real PostgreSQL."""

from __future__ import annotations

import socket

import pytest

from velocity_app import create_app

pytestmark = pytest.mark.postgres


def test_healthz_answers_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_is_ready_with_a_migrated_database(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["checks"] == {"database": "ok", "schema": "0001_visits"}


def test_readyz_is_503_before_migrations(app_env, logs):
    app = create_app(app_env, log_stream=logs)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert "velocity-app migrate" in resp.get_json()["checks"]["schema"]
    app.extensions["velocity"].engine.dispose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readyz_is_503_without_a_database_and_hides_the_url(app_env, logs):
    env = {**app_env, "DATABASE_URL": f"postgresql://u:canary-unreachable-pw@127.0.0.1:{_closed_port()}/x",
           "DB_CONNECT_TIMEOUT": "1"}
    app = create_app(env, log_stream=logs)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["database"] == "unreachable"
    assert "canary-unreachable-pw" not in resp.get_data(as_text=True)
    assert "canary-unreachable-pw" not in logs.text()
    assert any(e.get("event") == "readiness_failed" for e in logs.events())


def test_the_healthcheck_command_does_not_load_the_app():
    """Docker runs `velocity-app healthcheck` in the container every interval: it imports neither Flask nor
    SQLAlchemy (under load a probe that loaded the whole app took more than its 5 s timeout)."""
    import subprocess
    import sys

    code = ("import sys; from velocity_app.cli import main; "
            "rc = main(['healthcheck', '--url', 'http://127.0.0.1:9/healthz', '--timeout', '1']); "
            "print(rc, sorted(m for m in ('flask', 'sqlalchemy', 'structlog') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[0] == "1 []", out.stdout + out.stderr
