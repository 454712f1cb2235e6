"""The real thing: Gunicorn serving the app, JSON logs from Gunicorn and the app alike."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_env(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")}
    return {**keep, **extra}


def _get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"{}")


def _first_answer(url: str, proc: subprocess.Popen, out) -> tuple[int, dict, dict]:
    """The first answer from `url` of the server `proc` starts (logging to `out`), within 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return _get(url)
        except OSError:
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
            time.sleep(0.2)


def test_gunicorn_serves_health_readiness_and_logs_json(migrated, tmp_path, canaries):
    port = _free_port()
    env = _base_env({**migrated, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
                     "GUNICORN_ACCESS_LOG": "true", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")})
    out = tmp_path / "out.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "velocity_app", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            status, _, _ = _first_answer(f"http://127.0.0.1:{port}/healthz", proc, out)
            assert status == 200
            status, _, body = _get(f"http://127.0.0.1:{port}/readyz")
            assert status == 200 and body["status"] == "ready"
            for _ in range(4):
                _get(f"http://127.0.0.1:{port}/healthz")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                metrics = resp.read().decode()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    # Both workers' samples are added up: 1 + 4 health checks.
    assert 'http_requests_total{endpoint="/healthz",method="GET",status="200"} 5.0' in metrics
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is JSON, Gunicorn's included
    loggers = {e.get("logger") for e in events}
    assert "gunicorn.error" in loggers
    access = [e for e in events if e.get("event") == "access"]
    assert access and {"method", "path", "status", "duration_ms", "request_id"} <= set(access[0])
    app_ids = {e["request_id"] for e in events if e.get("event") == "request"}
    assert any(e.get("event") == "request" and e.get("path") == "/readyz" for e in events)
    # Gunicorn's access line carries the same request id as the app's request event.
    assert {e["request_id"] for e in access} == app_ids
    for secret in canaries:
        assert secret not in out.read_text()


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL"])
def test_gunicorn_refuses_to_start_without_a_secret_and_names_it(migrated, missing):
    env = _base_env({k: v for k, v in migrated.items() if k != missing})
    env["GUNICORN_BIND"] = f"127.0.0.1:{_free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:velocity_app.gunicorn_conf", "velocity_app.wsgi:app"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert f"configuration error: missing required environment variable(s): {missing}" in proc.stderr


def test_cli_check_config_names_the_missing_variable():
    proc = subprocess.run([sys.executable, "-m", "velocity_app", "check-config"], env=_base_env({}), capture_output=True, text=True)
    assert proc.returncode == 2
    assert "SECRET_KEY" in proc.stderr and "DATABASE_URL" in proc.stderr


def test_cli_migrate_brings_a_fresh_database_to_head(app_env, postgres):
    proc = subprocess.run([sys.executable, "-m", "velocity_app", "migrate"], env=_base_env(app_env), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    db = app_env["DATABASE_URL"].rsplit("/", 1)[1]
    assert postgres.psql("SELECT version_num FROM alembic_version", database=db) == "0001_visits"
    # Migration logs are JSON too, and carry no password.
    for line in filter(None, proc.stdout.splitlines()):
        json.loads(line)
    assert app_env["DATABASE_URL"].split(":")[2].split("@")[0] not in proc.stdout + proc.stderr


def test_serve_reads_the_secrets_from_the_mounted_directory(migrated, tmp_path, canaries):
    """As in the pod: the secrets are files of a Secret volume, not variables; Gunicorn serves with them."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("SECRET_KEY", "DATABASE_URL"):
        (secrets / name).write_text(migrated[name])
    port = _free_port()
    env = _base_env({"VELOCITY_SECRETS_DIR": str(secrets), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"})
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    out = tmp_path / "out.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "velocity_app", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            status, _, body = _first_answer(f"http://127.0.0.1:{port}/readyz", proc, out)
            assert status == 200 and body["status"] == "ready"
            # `serve` exec'd Gunicorn with the values in its environment (what `kubectl exec ... /proc/1/environ` reads).
            environ = dict(item.split("=", 1) for item in
                           open(f"/proc/{proc.pid}/environ", "rb").read().decode().split("\0") if "=" in item)
            assert environ["DATABASE_URL"] == migrated["DATABASE_URL"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for secret in canaries:
        assert secret not in out.read_text()
