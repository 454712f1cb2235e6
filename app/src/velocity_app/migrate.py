"""Alembic migrations, runnable without an alembic.ini (``velocity-app migrate``).

The compatibility window (expand/contract)
------------------------------------------
Every migration file declares ``compatible_with_previous = True`` when the code of the
revision below it still runs on the schema it produces (an *expand* step: a new nullable
column, a new table, a new index), and ``False`` when it does not (a *contract* step: a
drop, a rename, a new NOT NULL without default). A missing declaration counts as False.

After every upgrade or downgrade, in the same transaction as Alembic's own
``alembic_version`` update, the migration writes the *window* into the table
``velocity_schema_window``: the code schema heads that can run on the database as it
now is, i.e. the database head and each revision below it reached through an unbroken
run of ``compatible_with_previous = True`` migrations. The table is how an older release,
whose image does not carry the newer migration files, learns whether it may serve:
``/readyz`` is ready when the code's head is the database head or is in that window.
"""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

SCRIPT_LOCATION = "velocity_app:migrations"
WINDOW_TABLE = "velocity_schema_window"
COMPAT_ATTR = "compatible_with_previous"


class WindowDeclarationError(RuntimeError):
    """A migration's ``compatible_with_previous`` is not a bool."""


def script_directory(script_location: str = SCRIPT_LOCATION) -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return ScriptDirectory.from_config(cfg)


def compatible_with_previous(script: ScriptDirectory, revision: str) -> bool:
    """What migration ``revision`` declares; a missing declaration is False (the safe side)."""
    rev = script.get_revision(revision)
    value = getattr(rev.module, COMPAT_ATTR, False)
    if not isinstance(value, bool):
        raise WindowDeclarationError(
            f"migration {revision} ({rev.path}): {COMPAT_ATTR} must be True or False, got {value!r}"
        )
    return value


def window_for(script: ScriptDirectory, head: str) -> list[str]:
    """The code schema heads that run on a database at ``head``, newest first.

    ``head`` itself, then each revision below it while the migration above declares
    ``compatible_with_previous = True``. A merge revision (several parents) ends the window.
    """
    window = [head]
    current = head
    while compatible_with_previous(script, current):
        below = script.get_revision(current).down_revision
        if below is None or isinstance(below, (tuple, list)):
            break
        window.append(below)
        current = below
    return window


@lru_cache(maxsize=4)
def code_window(script_location: str = SCRIPT_LOCATION) -> tuple[str, ...]:
    """The window a database migrated by this code is left with (``velocity-app schema-info``)."""
    return tuple(window_for(script_directory(script_location), schema_head(script_location)))


@lru_cache(maxsize=4)
def known_revisions(script_location: str = SCRIPT_LOCATION) -> frozenset[str]:
    """Every revision this code ships: a database at one of them is at or behind the code's head."""
    return frozenset(rev.revision for rev in script_directory(script_location).walk_revisions())


def record_window(connection: Connection, script: ScriptDirectory) -> list[str]:
    """Write the window for the database's current head; called by env.py inside the migration's
    transaction, so the window and ``alembic_version`` always change together."""
    head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if head is None:  # downgraded to base: nothing left to be compatible with
        connection.execute(text("DROP TABLE IF EXISTS velocity_schema_window"))
        return []
    try:
        window = window_for(script, head)
    except CommandError:  # the database is ahead of this code: leave the newer release's window
        return []
    connection.execute(text(
        "CREATE TABLE IF NOT EXISTS velocity_schema_window ("
        " code_head varchar(64) PRIMARY KEY, db_head varchar(64) NOT NULL,"
        " position integer NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
    ))
    connection.execute(text("DELETE FROM velocity_schema_window"))
    for position, code_head in enumerate(window):
        connection.execute(
            text("INSERT INTO velocity_schema_window (code_head, db_head, position) VALUES (:c, :d, :p)"),
            {"c": code_head, "d": head, "p": position},
        )
    return window


def alembic_config(engine: Engine, script_location: str = SCRIPT_LOCATION) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    # Hand over the engine itself, never a URL string: the URL carries the password.
    cfg.attributes["engine"] = engine
    return cfg


@lru_cache(maxsize=4)
def schema_head(script_location: str = SCRIPT_LOCATION) -> str:
    """The revision `velocity-app migrate` brings a database to: the head of the migrations.

    Read once from Alembic's script directory (``script_location``: the shipped
    migrations by default), so a new migration moves it with no constant to edit.
    Raises alembic's CommandError if the migrations have several heads.
    """
    head = script_directory(script_location).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {script_location}")
    return head


def upgrade(engine: Engine, revision: str = "head", script_location: str = SCRIPT_LOCATION) -> None:
    command.upgrade(alembic_config(engine, script_location), revision)


def downgrade(engine: Engine, revision: str, script_location: str = SCRIPT_LOCATION) -> None:
    command.downgrade(alembic_config(engine, script_location), revision)
