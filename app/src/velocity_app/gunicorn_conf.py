"""Gunicorn settings: JSON logs through the app's renderer, config checked before fork.

Use with ``gunicorn -c python:velocity_app.gunicorn_conf velocity_app.wsgi:app``.
Every setting can be overridden with GUNICORN_CMD_ARGS or the variables below.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from gunicorn.glogging import Logger

from velocity_app.config import ConfigError, load_secrets_dir, load_settings
from velocity_app.observability import request_id_from

# The mounted Secret (VELOCITY_SECRETS_DIR) is read now: before the logger is set up with the values it redacts and
# before any worker forks (the workers inherit the environment). An error is reported by on_starting.
try:
    load_secrets_dir()
    _secrets_dir_error: ConfigError | None = None
except ConfigError as _exc:
    _secrets_dir_error = _exc

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Seconds Gunicorn keeps accepting after SIGTERM before it closes its listener and drains its workers. In
# Kubernetes the kubelet sends SIGTERM while kube-proxy still routes new connections to the pod for a moment
# (the endpoint removal reaches every node asynchronously): closing at once refuses them. Default 5 s in a pod
# (KUBERNETES_SERVICE_HOST is set in every container), 0 elsewhere; 5 + graceful_timeout stays under the pod's
# terminationGracePeriodSeconds (30). Measured by benchmarks/zero_downtime.py.
shutdown_delay = float(os.environ.get("GUNICORN_SHUTDOWN_DELAY", "5" if os.environ.get("KUBERNETES_SERVICE_HOST") else "0"))
keepalive = 5
# /tmp is the one writable place in a read-only container (an emptyDir or tmpfs).
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", tempfile.gettempdir())
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app logs every request itself; Gunicorn's access log is opt-in.
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "").lower() in ("1", "true", "yes") else None
errorlog = "-"
# Gunicorn 23+ opens a control socket under $HOME, which a read-only container does not have.
control_socket_disable = True
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


class JsonLogger(Logger):
    """Gunicorn's logger, emitting its error and access records as our JSON lines."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from velocity_app.logs import stdlib_formatter

        formatter = stdlib_formatter(os.environ.get("SERVICE_NAME", "velocity-app"), _secret_values())
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        # The id the app used (taken from the request or generated) is on the response.
        response_headers = {k.lower(): v for k, v in (getattr(resp, "headers", None) or [])}
        self.access_log.info(
            "access",
            extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": getattr(resp, "status_code", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 3),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "request_id": response_headers.get("x-request-id") or request_id_from(None),
                "response_bytes": getattr(resp, "sent", None),
            },
        )


logger_class = JsonLogger


def _secret_values() -> tuple[str, ...]:
    try:
        return load_settings().secret_values()
    except ConfigError:
        return ()


def on_starting(server: Any) -> None:
    """Refuse to start, before any worker forks, when the environment is incomplete."""
    try:
        if _secrets_dir_error is not None:
            raise _secrets_dir_error
        load_settings()
    except ConfigError as exc:
        print(f"velocity-app: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    multiproc = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc:
        os.makedirs(multiproc, exist_ok=True)
        for name in os.listdir(multiproc):
            os.unlink(os.path.join(multiproc, name))
    server.log.info("starting velocity-app at %s with %s workers", bind, workers)


def when_ready(server: Any) -> None:
    """Delay the arbiter's SIGTERM handling by shutdown_delay seconds (the workers keep serving meanwhile)."""
    if shutdown_delay <= 0:
        return
    stop = server.handle_term

    def handle_term() -> None:
        server.log.info("SIGTERM: serving %.1f s more while the endpoint is withdrawn, then stopping", shutdown_delay)
        time.sleep(shutdown_delay)
        stop()

    server.handle_term = handle_term


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

