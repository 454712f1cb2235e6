"""Sustained load on the real app while its dynamic database lease is kept alive, then let the lease go.

The app image runs as it does in production (Gunicorn, uid 10001, read-only root filesystem, no
capabilities) with the env file the vault_secrets role writes: SECRET_KEY from KV v2 and a
DATABASE_URL for a PostgreSQL user that Vault issued. The lease is cut to LEASE_TTL seconds, far
shorter than the load, so only renewal (velocity.platform.vault_db_credentials state=renewed, every
RENEW_EVERY seconds, from a second thread, as an operator's job would) keeps the user alive: when a
lease expires, Vault's revocation statements terminate the user's sessions and drop the login.

Asserted: zero failed requests over LOAD_SECONDS of mixed reads and writes; p99 latency under
P99_BOUND_S; every renewal succeeded and the user still logs in after several TTLs. Then the lease
is allowed to lapse: the login is refused, the app reports not-ready (503) while staying alive, and a
renewal of the expired lease is a clear error.

Marked `load` (about 80 s): `make test` runs it at the end when the CI time budget allows
(scripts/run-load-tests); `make load` runs it alone. VELOCITY_LOAD_SECONDS shortens it for a try-out.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.runner import ROOT, ansible_env, run_module

pytestmark = [pytest.mark.load, pytest.mark.slow, pytest.mark.vault, pytest.mark.postgres, pytest.mark.docker]

LOAD_SECONDS = float(os.environ.get("VELOCITY_LOAD_SECONDS", "60"))
LEASE_TTL = 20
RENEW_EVERY = 6
CLIENTS = 6
P99_BOUND_S = 0.25
MIN_REQUESTS = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def _load_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


class Client(threading.Thread):
    """One keep-alive HTTP client issuing a mix of reads and writes until `stop` is set."""

    MIX = [("GET", "/api/visits?limit=10")] * 4 + [("POST", "/api/visits")] * 3 + [("GET", "/readyz")] * 2 + \
          [("GET", "/healthz")]

    def __init__(self, port: int, stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop, self.rng = port, stop, random.Random(seed)
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            method, path = self.rng.choice(self.MIX)
            body = json.dumps({"page": f"/load/{self.rng.randrange(50)}"}) if method == "POST" else None
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.latencies.append(time.perf_counter() - started)
            if status >= 400:
                self.errors.append(f"{method} {path}: HTTP {status}")
        conn.close()


def test_sustained_load_while_the_db_lease_is_renewed_then_expiry_cuts_the_app_off(tmp_path, vault, postgres,
                                                                                    app_image, docker_engine):
    out_dir = tmp_path / "secrets"
    login = {"url": vault.addr, "auth_method": "approle", "role_id": vault.role_id, "secret_id": vault.secret_id}
    play = tmp_path / "secrets.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - velocity.platform.vault_secrets\n")
    role_vars = tmp_path / "vars.json"
    role_vars.write_text(json.dumps({
        "vault_secrets_url": vault.addr, "vault_secrets_auth_method": "approle",
        "vault_secrets_role_id": vault.role_id, "vault_secrets_secret_id": vault.secret_id,
        "vault_secrets_output_dir": str(out_dir), "velocity_pg_port": postgres.port}))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(play), "-e", f"@{role_vars}", "-e", f"ansible_python_interpreter={sys.executable}"],
                          cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    env_file, lease_file = out_dir / "app.env", out_dir / "db-lease.json"
    env = _load_env(env_file)
    assert re.match(r"postgresql://v-[^:@]*velocity", env["DATABASE_URL"]), "not a dynamic user of the velocity role"
    lease_id = json.loads(lease_file.read_text())["lease_id"]

    def renew(increment: int) -> dict:
        result, _ = run_module(tmp_path / "renew", "velocity.platform.vault_db_credentials",
                               dict(login, state="renewed", lease_state_file=str(lease_file), increment=increment))
        return result

    (tmp_path / "renew").mkdir()
    name = "velocity-load-" + uuid.uuid4().hex[:8]
    port = _free_port()
    docker = ["docker", "run", "--network", "host", "--env-file", str(env_file), "--read-only",
              "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    migrate = subprocess.run([*docker, "--rm", app_image, "velocity-app", "migrate"], capture_output=True, text=True,
                             timeout=120)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    subprocess.run([*docker, "-d", "--name", name, "-e", f"GUNICORN_BIND=127.0.0.1:{port}", "-e", "GUNICORN_WORKERS=2",
                    app_image], check=True, capture_output=True, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while _get(port, "/readyz") != 200:
            assert time.monotonic() < deadline, "the app did not become ready"
            time.sleep(0.3)

        # From here on only renewal keeps the database user alive.
        first = renew(LEASE_TTL)
        assert not first.get("failed"), first.get("msg")
        assert first["lease"]["lease_duration"] <= LEASE_TTL

        stop = threading.Event()
        renewals: list[tuple[float, dict]] = []

        def renewer() -> None:
            while not stop.wait(RENEW_EVERY):
                renewals.append((time.monotonic(), renew(LEASE_TTL)))

        clients = [Client(port, stop, seed) for seed in range(CLIENTS)]
        started = time.monotonic()
        renew_thread = threading.Thread(target=renewer, daemon=True)
        for thread in [*clients, renew_thread]:
            thread.start()
        time.sleep(LOAD_SECONDS)
        stop.set()
        for thread in [*clients, renew_thread]:
            thread.join(60)
        elapsed = time.monotonic() - started

        latencies = sorted(x for c in clients for x in c.latencies)
        errors = [e for c in clients for e in c.errors]
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        report = {"seconds": round(elapsed, 1), "requests": len(latencies) + len(errors), "errors": len(errors),
                  "rps": round(len(latencies) / elapsed, 1), "p50_ms": round(p50 * 1000, 1),
                  "p99_ms": round(p99 * 1000, 1), "max_ms": round(latencies[-1] * 1000, 1),
                  "renewals": len(renewals), "lease_ttl_s": LEASE_TTL}
        print("\nload:", json.dumps(report))
        report_dir = Path(os.environ.get("VELOCITY_STATE_DIR", "/tmp/velocity")) / "reliability"
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "load.json").write_text(json.dumps(report) + "\n")

        assert errors == [], f"{len(errors)} failed requests, first: {errors[:5]}"
        assert len(latencies) >= MIN_REQUESTS, report
        assert p99 < P99_BOUND_S, report
        assert len(renewals) >= LOAD_SECONDS // LEASE_TTL, report
        for _at, result in renewals:
            assert not result.get("failed") and result["how"] == "renewed", result.get("msg")
        gaps = [b - a for (a, _), (b, _) in zip([(started, None), *renewals], renewals, strict=False)]
        assert max(gaps) < LEASE_TTL, f"a gap between renewals ({max(gaps):.1f}s) outlived the lease"
        # Renewal, not luck: the lease outlived several of its own TTLs and the user still logs in.
        assert elapsed > 2 * LEASE_TTL
        with psycopg.connect(env["DATABASE_URL"], connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1

        # Let it lapse: Vault revokes the lease and its user; the app must notice and say so.
        short = renew(2)
        assert not short.get("failed"), short.get("msg")
        with vault.client() as c:
            from ansible_collections.velocity.platform.plugins.module_utils.vault import db as vault_db

            deadline = time.monotonic() + 30
            while vault_db.lookup(c, lease_id) is not None:
                assert time.monotonic() < deadline, "Vault did not expire the lease"
                time.sleep(0.5)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(env["DATABASE_URL"], connect_timeout=5)
        deadline = time.monotonic() + 30
        while (ready := _get(port, "/readyz")) != 503:
            assert time.monotonic() < deadline, f"/readyz still answers {ready} after the lease expired"
            time.sleep(0.5)
        assert _get(port, "/healthz") == 200  # alive, not ready: the orchestrator stops routing, nothing restarts
        late = renew(LEASE_TTL)
        assert late["failed"] and "unknown to Vault (expired or revoked)" in late["msg"]
        assert "issue new credentials with state=present" in late["msg"]
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
        for value in (env["SECRET_KEY"], env["DATABASE_URL"].split(":")[2].split("@")[0]):
            assert value not in logs
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
