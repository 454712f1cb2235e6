"""Fixtures for the service's tests: a real PostgreSQL database per test."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from velocity_app import create_app
from velocity_app.config import load_settings
from velocity_app.db import make_engine
from velocity_app.migrate import upgrade

# Canary values: if either ever shows up in a log line, a test fails.
CANARY_SECRET_KEY = "canary-secret-key-3f9a1c7e5b"
CANARY_DB_PASSWORD = "canary-db-password-8d2e4a"


@pytest.fixture
def canaries() -> tuple[str, str]:
    return CANARY_SECRET_KEY, CANARY_DB_PASSWORD


@pytest.fixture
def app_env(postgres, fresh_database) -> dict[str, str]:
    """Environment for the app, pointing at a fresh database, with canary secrets."""
    role = fresh_database + "_app"
    postgres.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{CANARY_DB_PASSWORD}'", database="postgres")
    postgres.psql(f"ALTER DATABASE {fresh_database} OWNER TO {role}", database="postgres")
    postgres.psql(f"GRANT ALL ON SCHEMA public TO {role}", database=fresh_database)
    yield {
        "SECRET_KEY": CANARY_SECRET_KEY,
        "DATABASE_URL": postgres.url(database=fresh_database, user=role, password=CANARY_DB_PASSWORD),
        "LOG_LEVEL": "INFO",
    }
    postgres.psql(f"DROP DATABASE IF EXISTS {fresh_database} WITH (FORCE)", database="postgres")
    postgres.psql(f"DROP ROLE IF EXISTS {role}", database="postgres")


@pytest.fixture
def migrated(app_env) -> dict[str, str]:
    engine = make_engine(load_settings(app_env))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return app_env


class LogCapture(io.BytesIO):
    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.strip()]

    def text(self) -> str:
        return self.getvalue().decode()


@pytest.fixture
def logs() -> LogCapture:
    return LogCapture()


@pytest.fixture
def app(migrated, logs) -> Iterator[Flask]:
    application = create_app(migrated, log_stream=logs)
    application.config["TESTING"] = True
    yield application
    application.extensions["velocity"].engine.dispose()


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()
