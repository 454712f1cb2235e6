"""The expand/contract window: the previous release stays ready on a database one compatible
migration ahead, and says why it is not when the migration above it is declared incompatible.

"This release" is the shipped code (schema head 0001_visits); "the next release" is a copy
of the shipped migrations plus one more that adds a column, migrated with its own script
directory, exactly as the newer image's `velocity-app migrate` would.
"""

from __future__ import annotations

import ast
import json
import shutil
import time
from pathlib import Path

import pytest

import velocity_app
from velocity_app import create_app
from velocity_app.cli import main
from velocity_app.config import load_settings
from velocity_app.db import make_engine, schema_revision, schema_window
from velocity_app.migrate import (
    WindowDeclarationError,
    code_window,
    downgrade,
    schema_head,
    script_directory,
    upgrade,
    window_for,
)

VERSIONS = Path(velocity_app.__file__).parent / "migrations" / "versions"
NEXT = "0002_visits_user_agent"


def _next_release(tmp_path: Path, compatible: object, *, name: str = NEXT, fail: bool = False) -> str:
    """The shipped migrations plus one that adds a nullable column (an expand step)."""
    dest = tmp_path / "migrations"
    shutil.copytree(VERSIONS.parent, dest, ignore=shutil.ignore_patterns("__pycache__"))
    body = "    op.execute('SELECT 1/0')\n" if fail else ""
    (dest / "versions" / f"{name}.py").write_text(
        f'"""Add visits.user_agent."""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f'revision = "{name}"\ndown_revision = "{schema_head()}"\nbranch_labels = None\ndepends_on = None\n'
        f"compatible_with_previous = {compatible!r}\n\n\n"
        f"def upgrade() -> None:\n    op.add_column('visits', sa.Column('user_agent', sa.String(512), nullable=True))\n"
        f"{body}\n\ndef downgrade() -> None:\n    op.drop_column('visits', 'user_agent')\n"
    )
    return str(dest)


def _readyz(env: dict[str, str], logs) -> tuple[int, dict]:
    app = create_app(env, log_stream=logs)
    try:
        resp = app.test_client().get("/readyz")
        return resp.status_code, resp.get_json()
    finally:
        app.extensions["velocity"].engine.dispose()


def test_every_shipped_migration_declares_its_window():
    for path in sorted(VERSIONS.glob("*.py")):
        names = {t.id for node in ast.parse(path.read_text()).body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        assert "compatible_with_previous" in names, f"{path.name} must declare compatible_with_previous"


def test_window_follows_compatible_migrations_only(tmp_path):
    compatible = _next_release(tmp_path / "a", True)
    assert window_for(script_directory(compatible), NEXT) == [NEXT, schema_head()]
    incompatible = _next_release(tmp_path / "b", False)
    assert window_for(script_directory(incompatible), NEXT) == [NEXT]
    assert code_window() == (schema_head(),)


def test_a_declaration_that_is_not_a_bool_is_refused_by_name(tmp_path):
    loc = _next_release(tmp_path, "yes")
    with pytest.raises(WindowDeclarationError, match=f"{NEXT}.*compatible_with_previous must be True or False"):
        window_for(script_directory(loc), NEXT)


@pytest.mark.postgres
def test_migrate_records_the_window_in_the_same_transaction(migrated):
    engine = make_engine(load_settings(migrated))
    try:
        assert schema_window(engine) == [schema_head()]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_previous_release_stays_ready_ahead_within_the_window(migrated, logs, tmp_path):
    loc = _next_release(tmp_path, True)
    engine = make_engine(load_settings(migrated))
    try:
        upgrade(engine, script_location=loc)
        assert schema_revision(engine) == NEXT
        assert schema_window(engine) == [NEXT, schema_head()]
    finally:
        engine.dispose()
    status, body = _readyz(migrated, logs)
    assert status == 200, body
    assert body["checks"]["schema"].startswith(f"at {NEXT}, ahead of this release's {schema_head()}")
    assert body["checks"]["schema_window"] == [NEXT, schema_head()]
    # And the previous release still writes and reads with the extra column present.
    app = create_app(migrated, log_stream=logs)
    client = app.test_client()
    assert client.post("/api/visits", json={"page": "/window"}).status_code == 201
    assert any(v["page"] == "/window" for v in client.get("/api/visits").get_json()["items"])
    app.extensions["velocity"].engine.dispose()


@pytest.mark.postgres
def test_previous_release_is_unready_past_an_incompatible_migration_and_says_what_to_do(migrated, logs, tmp_path):
    loc = _next_release(tmp_path, False)
    engine = make_engine(load_settings(migrated))
    try:
        upgrade(engine, script_location=loc)
        assert schema_window(engine) == [NEXT]
    finally:
        engine.dispose()
    status, body = _readyz(migrated, logs)
    assert status == 503
    reason = body["checks"]["schema"]
    assert f"at {NEXT}, ahead of this release's {schema_head()} and outside the compatibility window" in reason
    assert f"velocity-app migrate --downgrade {schema_head()}" in reason
    assert any(e.get("event") == "readiness_failed" and e.get("window") == [NEXT] for e in logs.events())


@pytest.mark.postgres
def test_downgrade_restores_the_schema_and_the_window(migrated, logs, tmp_path):
    loc = _next_release(tmp_path, False)
    engine = make_engine(load_settings(migrated))
    try:
        upgrade(engine, script_location=loc)
        started = time.monotonic()
        downgrade(engine, schema_head(), script_location=loc)
        took = time.monotonic() - started
        assert schema_revision(engine) == schema_head()
        assert schema_window(engine) == [schema_head()]
        with engine.connect() as conn:
            cols = conn.exec_driver_sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'visits'").scalars().all()
        assert "user_agent" not in cols
    finally:
        engine.dispose()
    print(f"downgrade of one add-column migration took {took:.3f}s")
    status, body = _readyz(migrated, logs)
    assert status == 200, body


@pytest.mark.postgres
def test_a_failed_migration_leaves_schema_and_window_as_they_were(migrated, tmp_path):
    loc = _next_release(tmp_path, True, fail=True)
    engine = make_engine(load_settings(migrated))
    try:
        with pytest.raises(Exception, match="division by zero"):
            upgrade(engine, script_location=loc)
        assert schema_revision(engine) == schema_head()
        assert schema_window(engine) == [schema_head()]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_cli_migrate_prints_where_it_went_and_the_window(migrated, monkeypatch, capsys):
    for key, value in migrated.items():
        monkeypatch.setenv(key, value)
    assert main(["migrate", "--downgrade", "base"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["migrated"] == {"from": schema_head(), "to": None}
    assert out["schema_window"] is None
    assert main(["migrate"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["migrated"] == {"from": None, "to": schema_head()}
    assert out["schema_window"] == [schema_head()]
    assert migrated["DATABASE_URL"].split("@")[0].rsplit(":", 1)[1] not in json.dumps(out)


def test_cli_schema_info_needs_no_database(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["schema-info"]) == 0
    assert json.loads(capsys.readouterr().out) == {"schema_head": schema_head(), "schema_window": [schema_head()]}
