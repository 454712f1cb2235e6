# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke test of the app image in a real, locked-down container.

Sequence: (optionally) `velocity-app migrate` in a one-off container; start the
service with a read-only root filesystem, a tmpfs /tmp, every capability
dropped and no-new-privileges; wait for Docker's own health check; probe
/healthz and /readyz from the controller; check inside that PID 1 is not root,
holds no capability and cannot write to /; collect the log tail. The
containers are removed in every case.

The environment (from the secrets stage's env file) is handed to Docker and
never echoed: every sensitive value is masked in messages and in log lines.

Networking: the container runs on the engine's host, which the controller
reaches at ``engine_host`` (engine.probe_host: the host of a tcp:// engine,
127.0.0.1 for a unix socket or ssh). The default ``network_mode=host`` lets the
container reach services bound to that host's loopback (the local PostgreSQL);
Gunicorn is then bound to <engine host address>:<free port> (127.0.0.1 for a
local engine, so nothing is exposed beyond loopback), and the image's health
check command is pointed at that address and port. With ``network_mode=bridge``
the port is published on the engine host's address only (Docker picks a free
port there) and the database must be reachable from the bridge network.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url

from ansible_collections.velocity.platform.plugins.module_utils.common import envfile
from ansible_collections.velocity.platform.plugins.module_utils.common.names import looks_secret
from ansible_collections.velocity.platform.plugins.module_utils.image.engine import (
    DockerException,
    DockerModuleError,
)

MASK = "********"
SMOKE_LABEL = "velocity.dev/smoke-test"
CONTAINER_PORT = 8000
# The tmpfs the read-only container writes to: a path inside the container, not on this host.
CONTAINER_TMP = "/tmp"  # noqa: S108  # nosec B108


class SmokeTestFailed(DockerModuleError):
    """The image did not pass; details carry the (masked) log tail and the checks so far."""


def parse_env_file(path: str) -> dict[str, str]:
    """The variables of an env file, read as Docker reads it (common/envfile.py).

    Errors name the line number only, never its content.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return envfile.parse(handle.read(), f"env_file '{path}'")
    except OSError as exc:
        raise DockerModuleError(f"cannot read env_file '{path}': {exc.strerror}") from None
    except envfile.EnvFileError as exc:
        raise DockerModuleError(str(exc)) from None


def sensitive_values(env: dict[str, str]) -> set[str]:
    """Values to mask: secret-looking keys (any length), every value of 6+ chars, URL passwords."""
    values: set[str] = set()
    for key, value in env.items():
        if not value:
            continue
        if looks_secret(key) or len(value) >= 6:
            values.add(value)
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                values.add(password)
    return values


def scrub(text: str, secrets: set[str]) -> str:
    # Longest first, so a URL is masked whole before its password is looked for.
    for value in sorted(secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_address(host: str) -> str:
    """The IPv4 address the controller reaches the engine host at (127.0.0.1 for a local engine)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "127.0.0.1"
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (OSError, IndexError):
        raise DockerModuleError(
            f"the Docker Engine's host '{host}' does not resolve to an IPv4 address on the controller, so the smoke "
            "test cannot reach the container's port there: use an address in docker_host") from None


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        resp = open_url(url, timeout=timeout, follow_redirects="none")
        return resp.status, resp.read(2048).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2048).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))


@dataclass
class SmokeRequest:
    image: str
    env: dict[str, str] = field(default_factory=dict, repr=False)
    network_mode: str = "host"
    port: int = 0
    migrate: bool = False
    expect_ready: bool = True
    timeout: int = 120
    ready_timeout: int = 30
    health_interval: int = 1
    read_only: bool = True
    tmpfs_size: str = "64m"
    log_lines: int = 40
    allow_error_logs: bool = False
    name_prefix: str = "velocity-smoke"
    # Where the controller reaches the engine's host (EngineSettings.probe_host).
    engine_host: str = "127.0.0.1"


@dataclass
class SmokeResult:
    checks: dict[str, Any]
    logs_tail: list[str]
    container_name: str
    duration_s: float


class SmokeTest:
    def __init__(self, client, request: SmokeRequest) -> None:
        self.client = client
        self.req = request
        self.secrets = sensitive_values(request.env)
        self.name = f"{request.name_prefix}-{uuid.uuid4().hex[:10]}"
        self.address = host_address(request.engine_host)
        self.port = request.port or (free_port() if request.network_mode == "host" else CONTAINER_PORT)
        self.checks: dict[str, Any] = {}
        self.logs_tail: list[str] = []

    # -- container plumbing ------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(self.req.env)
        if self.req.network_mode == "host":
            # Loopback for a local engine: the smoke test must not expose the app on more interfaces than needed.
            env["GUNICORN_BIND"] = f"{self.address}:{self.port}"
        return env

    def _healthcheck(self, image_attrs: dict[str, Any]) -> dict[str, Any]:
        hc = (image_attrs.get("Config") or {}).get("Healthcheck") or {}
        test = list(hc.get("Test") or [])
        if not test or test == ["NONE"]:
            raise SmokeTestFailed(f"image {self.req.image} defines no HEALTHCHECK; the smoke test waits for it")
        if self.req.network_mode == "host":
            test = [re.sub(rf"(?:127\.0\.0\.1|localhost)?:{CONTAINER_PORT}\b", f"{self.address}:{self.port}", part)
                    for part in test]
        second = 1_000_000_000
        return {"test": test, "interval": self.req.health_interval * second, "timeout": 5 * second,
                "retries": 3, "start_period": 2 * second}

    def _create(self, name: str, command: list[str] | None, healthcheck: dict[str, Any] | None):
        kwargs: dict[str, Any] = {
            "name": name,
            "environment": self._env(),
            "detach": True,
            "read_only": self.req.read_only,
            "tmpfs": {CONTAINER_TMP: f"rw,nosuid,nodev,noexec,size={self.req.tmpfs_size}"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "labels": {SMOKE_LABEL: "true"},
            "network_mode": self.req.network_mode,
        }
        if command:
            kwargs["command"] = command
        if healthcheck:
            kwargs["healthcheck"] = healthcheck
        if self.req.network_mode != "host" and not command:
            kwargs["ports"] = {f"{CONTAINER_PORT}/tcp": (self.address, None)}
        return self.client.containers.create(self.req.image, **kwargs)

    def _logs(self, container) -> list[str]:
        try:
            raw = container.logs(tail=self.req.log_lines).decode("utf-8", "replace")
        except DockerException:
            return []
        return [scrub(line, self.secrets) for line in raw.splitlines()]

    def _remove(self, container) -> None:
        try:
            container.remove(force=True, v=True)
        except DockerException:
            pass

    def failure(self, reason: str, container=None) -> SmokeTestFailed:
        """The error to raise (the caller raises it): reason, the last log lines, scrubbed of the secrets."""
        if container is not None:
            self.logs_tail = self._logs(container)
        # The app says why it stopped in its last lines; put them where the operator looks first.
        last = "\n  ".join(self.logs_tail[-3:])
        message = f"smoke test of {self.req.image} failed: {reason}" + (f"; last log lines:\n  {last}" if last else "")
        return SmokeTestFailed(
            scrub(message, self.secrets),
            checks=self.checks, logs_tail=self.logs_tail, container_name=self.name,
        )

    # -- steps ---------------------------------------------------------------
    def migrate(self) -> None:
        container = self._create(f"{self.name}-migrate", ["velocity-app", "migrate"], None)
        try:
            container.start()
            try:
                status = container.wait(timeout=self.req.timeout)
            except Exception:  # requests' ReadTimeout: the SDK does not wrap it
                raise self.failure(f"`velocity-app migrate` did not finish within {self.req.timeout}s", container) from None
            code = status.get("StatusCode")
            self.checks["migrate"] = "ok" if code == 0 else f"exit {code}"
            if code != 0:
                raise self.failure(f"`velocity-app migrate` exited with code {code}", container)
        finally:
            self._remove(container)

    def wait_healthy(self, container, deadline: float) -> None:
        while True:
            container.reload()
            state = container.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if state.get("Status") in ("exited", "dead"):
                raise self.failure(f"container exited with code {state.get('ExitCode')} before becoming healthy", container)
            if health == "healthy":
                self.checks["docker_health"] = "healthy"
                return
            if health == "unhealthy":
                probes = (state.get("Health") or {}).get("Log") or []
                last = (probes[-1].get("Output") or "").strip() if probes else ""
                raise self.failure(f"Docker health check reports unhealthy: {last[-300:]}", container)
            if time.monotonic() > deadline:
                raise self.failure(f"not healthy after {self.req.timeout}s (health status: {health})", container)
            time.sleep(0.5)

    def base_url(self, container) -> str:
        if self.req.network_mode == "host":
            return f"http://{self.address}:{self.port}"
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{CONTAINER_PORT}/tcp") or []
        if not bindings:
            raise self.failure("port 8000 was not published", container)
        return f"http://{self.address}:{bindings[0]['HostPort']}"

    def probe(self, container, url: str) -> None:
        status, body = http_get(f"{url}/healthz")
        self.checks["healthz"] = status
        if status != 200:
            raise self.failure(f"/healthz answered {status or 'nothing'}: {body[:300]}", container)
        deadline = time.monotonic() + self.req.ready_timeout
        while True:
            status, body = http_get(f"{url}/readyz")
            if status == 200 or not self.req.expect_ready or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.checks["readyz"] = status
        if self.req.expect_ready and status != 200:
            detail = body.strip()[:400]
            try:
                detail = json.dumps(json.loads(body).get("checks", detail))
            except (ValueError, AttributeError):
                pass
            raise self.failure(f"/readyz answered {status or 'nothing'} after {self.req.ready_timeout}s: {detail}", container)

    def inspect_runtime(self, container) -> None:
        code, out = container.exec_run(["cat", "/proc/1/status"], demux=False)
        fields = dict(line.split(":", 1) for line in out.decode("utf-8", "replace").splitlines() if ":" in line)
        uid = int(fields.get("Uid", "0").split()[0]) if code == 0 else None
        self.checks["uid"] = uid
        if uid is None:
            raise self.failure("could not read the uid of PID 1 (/proc/1/status)", container)
        if uid == 0:
            raise self.failure("the service runs as root (uid 0); the image must set a non-root USER", container)
        cap_eff = fields.get("CapEff", "").strip()
        self.checks["capabilities"] = "none" if cap_eff and int(cap_eff, 16) == 0 else cap_eff
        if cap_eff and int(cap_eff, 16) != 0:
            raise self.failure(f"PID 1 holds capabilities (CapEff {cap_eff}) although all were dropped", container)
        if self.req.read_only:
            code, out = container.exec_run(
                ["python3", "-c", "import sys\ntry:\n open('/.velocity-rw-probe','w')\nexcept OSError as e:\n print(e.strerror); sys.exit(0)\nsys.exit(1)"]
            )
            writable = code != 0
            self.checks["read_only_rootfs"] = not writable
            if writable:
                raise self.failure("the root filesystem is writable although read_only was requested", container)
            code, dummy = container.exec_run(["python3", "-c", "import tempfile; tempfile.NamedTemporaryFile(dir='/tmp').close()"])
            self.checks["tmp_writable"] = code == 0
            if code != 0:
                raise self.failure("/tmp (tmpfs) is not writable for the service user", container)  # noqa: S108  # nosec B108

    def check_error_logs(self, container) -> None:
        try:
            lines = container.logs().decode("utf-8", "replace").splitlines()
        except DockerException:
            lines = self.logs_tail
        errors = [scrub(line, self.secrets) for line in lines if '"level":"error"' in line or '"level":"critical"' in line]
        self.checks["error_log_lines"] = len(errors)
        if errors and not self.req.allow_error_logs:
            raise self.failure(f"the service logged {len(errors)} error line(s), first: {errors[0][:300]}", container)

    def run(self) -> SmokeResult:
        started = time.monotonic()
        from docker.errors import ImageNotFound

        try:
            image_attrs = self.client.api.inspect_image(self.req.image)
        except ImageNotFound:
            raise DockerModuleError(f"image '{self.req.image}' not found on the Docker Engine: build it first") from None
        healthcheck = self._healthcheck(image_attrs)
        self.checks["image_user"] = (image_attrs.get("Config") or {}).get("User") or "root (unset)"
        if self.req.migrate:
            self.migrate()
        container = self._create(self.name, None, healthcheck)
        try:
            container.start()
            self.wait_healthy(container, started + self.req.timeout)
            self.probe(container, self.base_url(container))
            self.inspect_runtime(container)
            self.logs_tail = self._logs(container)
            self.check_error_logs(container)
        finally:
            self._remove(container)
        return SmokeResult(self.checks, self.logs_tail, self.name, round(time.monotonic() - started, 3))


def run_smoke_test(client, request: SmokeRequest) -> SmokeResult:
    test = SmokeTest(client, request)
    try:
        return test.run()
    except DockerModuleError:
        raise
    except DockerException as exc:
        raise test.failure(f"Docker Engine error: {exc}") from None


def leftover_containers(client) -> list[str]:
    """Names of smoke-test containers still present (should always be empty)."""
    return [c.name for c in client.containers.list(all=True, filters={"label": SMOKE_LABEL})]
