"""Alembic migrations, runnable without an alembic.ini (``velocity-app migrate``)."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

SCRIPT_LOCATION = "velocity_app:migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
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
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {script_location}")
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)
