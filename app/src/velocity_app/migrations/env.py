"""Alembic environment: online migrations only, on the engine the caller passes."""

from alembic import context

from velocity_app.db import Base
from velocity_app.migrate import record_window

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, transaction_per_migration=True)
    context.run_migrations()
    # Same transaction as alembic_version: the window never disagrees with the schema.
    record_window(connection, context.script)
