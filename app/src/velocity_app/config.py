"""Configuration, read only from environment variables.

Secrets (``SECRET_KEY``, ``DATABASE_URL``) are required and have no default:
the service refuses to start without them and names what is missing. Nothing
here generates a secret. In Kubernetes the secrets arrive as files of a
read-only Secret volume (``VELOCITY_SECRETS_DIR``, one file per variable), so
the container runtime never holds their values in the container's config;
:func:`load_secrets_dir` puts them into this process's environment at start.
Non-secret settings have documented defaults, listed in ``SETTINGS`` so that
``.env.example`` and the docs can be checked against it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REQUIRED = ("SECRET_KEY", "DATABASE_URL")
# A directory of files named like variables (a mounted Kubernetes Secret): read into the environment at start.
SECRETS_DIR_VARIABLE = "VELOCITY_SECRETS_DIR"
_VARIABLE_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MIN_SECRET_KEY_LENGTH = 16

# name -> (default, meaning). Everything optional the service reads.
SETTINGS: dict[str, tuple[str, str]] = {
    "LOG_LEVEL": ("INFO", "Minimum log level: DEBUG, INFO, WARNING, ERROR."),
    "LOG_REQUESTS": ("true", "Log one JSON event per HTTP request (true/false)."),
    "DB_POOL_SIZE": ("5", "SQLAlchemy connection pool size per worker."),
    "DB_POOL_TIMEOUT": ("5", "Seconds to wait for a pooled connection."),
    "DB_CONNECT_TIMEOUT": ("3", "Seconds to wait when opening a database connection."),
    "API_MAX_PAGE_SIZE": ("100", "Largest `limit` accepted by GET /api/visits."),
    "MAX_REQUEST_BYTES": ("65536", "Largest request body accepted, in bytes; larger ones get 413 before they are read."),
    "SERVICE_NAME": ("velocity-app", "Service name in logs and traces."),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("", "When set, export OpenTelemetry traces over OTLP/HTTP."),
    SECRETS_DIR_VARIABLE: ("", "A directory whose files (one per variable, e.g. SECRET_KEY) are read into the "
                           "environment at start: the mounted Kubernetes Secret."),
}

_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class Settings:
    secret_key: str = field(repr=False)
    database_url: str = field(repr=False)
    log_level: str = "INFO"
    log_requests: bool = True
    db_pool_size: int = 5
    db_pool_timeout: float = 5.0
    db_connect_timeout: int = 3
    api_max_page_size: int = 100
    max_request_bytes: int = 65536
    service_name: str = "velocity-app"
    otel_endpoint: str = ""
    # Earlier keys still accepted for verifying signatures during a rotation.
    secret_key_fallbacks: tuple[str, ...] = field(default=(), repr=False)

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        scheme, sep, rest = self.database_url.partition("://")
        if scheme in ("postgres", "postgresql"):
            scheme = "postgresql+psycopg"
        return f"{scheme}{sep}{rest}"

    def secret_values(self) -> tuple[str, ...]:
        """Values that must never appear in logs: the key and the DB password."""
        values = [self.secret_key, self.database_url, *self.secret_key_fallbacks]
        password = urlsplit(self.database_url).password
        if password:
            values.append(password)
        return tuple(v for v in values if v)


def load_secrets_dir(environ: MutableMapping[str, str] | None = None) -> tuple[str, ...]:
    """Read every file of the directory named by VELOCITY_SECRETS_DIR into ``environ``; return the names read.

    One file per variable, the file name is the variable's name (a Kubernetes Secret volume: its keys). Hidden
    entries (the volume's ``..data`` links and timestamped directories) and directories are skipped. One trailing
    newline is dropped. A variable already set to a different value is refused: two sources disagreeing about a
    secret is a deployment mistake, not something to settle silently. Errors name files, never values.
    """
    env = os.environ if environ is None else environ
    directory = env.get(SECRETS_DIR_VARIABLE, "").strip()
    if not directory:
        return ()
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{SECRETS_DIR_VARIABLE}={directory} is not a directory: mount the Secret volume there "
                          f"or unset {SECRETS_DIR_VARIABLE}")
    loaded = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        if not _VARIABLE_NAME.match(entry.name):
            raise ConfigError(f"{SECRETS_DIR_VARIABLE}: file {entry.name!r} is not a variable name "
                              "(A-Z, 0-9 and _; not starting with a digit): rename the Secret's key")
        try:
            value = entry.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{SECRETS_DIR_VARIABLE}: cannot read {entry.name} ({type(exc).__name__}): check the "
                              "volume's defaultMode and the pod's fsGroup") from None
        value = value[:-1] if value.endswith("\n") else value
        if env.get(entry.name, value) != value:
            raise ConfigError(f"{entry.name} is set in the environment and differs from {SECRETS_DIR_VARIABLE}/"
                              f"{entry.name}: give it one source (drop it from the environment or from the Secret)")
        env[entry.name] = value
        loaded.append(entry.name)
    return tuple(loaded)


def _shown(raw: str, env: Mapping[str, str]) -> str:
    """The bad value for an error message, unless it carries a secret (a swapped variable)."""
    secrets = [env.get("SECRET_KEY", "").strip(), env.get("DATABASE_URL", "").strip()]
    password = urlsplit(secrets[1]).password if "://" in secrets[1] else None
    if any(s and (s in raw or raw in s) for s in [*secrets, password or ""] if len(s) >= 4) and len(raw) >= 4:
        return "(value not shown: it matches a secret)"
    return repr(raw)


def _int(env: Mapping[str, str], name: str, minimum: int, maximum: int) -> int:
    raw = env.get(name, SETTINGS[name][0]).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {_shown(raw, env)}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, SETTINGS[name][0]).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {_shown(raw, env)}")


def _check_database_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        # Never echo the URL: it carries the password.
        raise ConfigError(
            "DATABASE_URL must be a PostgreSQL URL "
            "(postgresql://USER:PASSWORD@HOST:PORT/DB), "
            f"got scheme {parts.scheme!r}"
        )
    if not parts.path.strip("/"):
        raise ConfigError("DATABASE_URL must name a database (…/DBNAME at the end)")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, or raise ConfigError naming the problem."""
    env = os.environ if environ is None else environ
    missing = [name for name in REQUIRED if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(
            "missing required environment variable(s): "
            + ", ".join(missing)
            + ". Provide them from Vault (the velocity.platform.vault_secrets role "
            "writes them to an env file); the service never generates secrets."
        )
    secret_key = env["SECRET_KEY"].strip()
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is too short ({len(secret_key)} characters); "
            f"use at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    database_url = env["DATABASE_URL"].strip()
    _check_database_url(database_url)

    raw_level = env.get("LOG_LEVEL", SETTINGS["LOG_LEVEL"][0]).strip()
    log_level = raw_level.upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(sorted(_LOG_LEVELS))}, got {_shown(raw_level, env)}")

    fallbacks = tuple(k.strip() for k in env.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip())
    if any(len(k) < MIN_SECRET_KEY_LENGTH for k in fallbacks):
        raise ConfigError(f"SECRET_KEY_FALLBACKS: every key must have at least {MIN_SECRET_KEY_LENGTH} characters")

    return Settings(
        secret_key=secret_key,
        secret_key_fallbacks=fallbacks,
        database_url=database_url,
        log_level=log_level,
        log_requests=_bool(env, "LOG_REQUESTS"),
        db_pool_size=_int(env, "DB_POOL_SIZE", 1, 100),
        db_pool_timeout=float(_int(env, "DB_POOL_TIMEOUT", 1, 300)),
        db_connect_timeout=_int(env, "DB_CONNECT_TIMEOUT", 1, 60),
        api_max_page_size=_int(env, "API_MAX_PAGE_SIZE", 1, 1000),
        max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 1024, 16 * 1024 * 1024),
        service_name=env.get("SERVICE_NAME", SETTINGS["SERVICE_NAME"][0]).strip() or "velocity-app",
        otel_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip(),
    )
