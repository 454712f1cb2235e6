"""Create the visits table.

Revision ID: 0001_visits
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_visits"
down_revision = None
branch_labels = None
depends_on = None
# Expand/contract window (velocity_app.migrate): can the code of the revision below run on
# this schema? The first migration has nothing below it.
compatible_with_previous = False


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("page", sa.String(length=2048), nullable=False),
        sa.Column("referrer", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_visits_created_at", "visits", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_visits_created_at", table_name="visits")
    op.drop_table("visits")
