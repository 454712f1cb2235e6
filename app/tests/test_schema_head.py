"""The schema head /readyz expects is the head of the shipped Alembic migrations."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from alembic.util import CommandError

import velocity_app
from velocity_app import create_app
from velocity_app.migrate import schema_head

VERSIONS = Path(velocity_app.__file__).parent / "migrations" / "versions"


def _assigned(path: Path, name: str) -> object:
    """A module-level constant of a migration file, read without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name} has no {name}")


def test_schema_head_is_the_one_migration_nothing_revises():
    files = sorted(VERSIONS.glob("*.py"))
    assert files, f"no migrations in {VERSIONS}"
    revisions = {_assigned(f, "revision") for f in files}
    revised = {_assigned(f, "down_revision") for f in files} - {None}
    heads = revisions - revised
    assert len(heads) == 1, f"the migrations must have exactly one head, found {sorted(heads)}"
    assert schema_head() == heads.pop()


def _copy_migrations(tmp_path: Path) -> Path:
    dest = tmp_path / "migrations"
    shutil.copytree(VERSIONS.parent, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _add_migration(versions: Path, revision: str, down_revision: str) -> None:
    (versions / f"{revision}.py").write_text(
        f'revision = "{revision}"\ndown_revision = "{down_revision}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )


def test_a_new_migration_moves_the_head_with_nothing_else_to_edit(tmp_path):
    migrations = _copy_migrations(tmp_path)
    current = schema_head()
    _add_migration(migrations / "versions", "0099_next", current)
    assert schema_head(str(migrations)) == "0099_next"


def test_two_heads_are_refused(tmp_path):
    migrations = _copy_migrations(tmp_path)
    _add_migration(migrations / "versions", "0098_a", schema_head())
    _add_migration(migrations / "versions", "0099_b", schema_head())
    with pytest.raises(CommandError, match="multiple heads"):
        schema_head(str(migrations))


@pytest.mark.postgres
def test_readyz_expects_what_migrate_brings_the_database_to(migrated, logs, postgres):
    db = migrated["DATABASE_URL"].rsplit("/", 1)[1]
    assert postgres.psql("SELECT version_num FROM alembic_version", database=db) == schema_head()
    app = create_app(migrated, log_stream=logs)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["checks"]["schema"] == schema_head()
    app.extensions["velocity"].engine.dispose()
