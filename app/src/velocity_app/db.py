"""Database engine, schema and the readiness check."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Engine, Integer, String, create_engine, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from velocity_app.config import Settings


class Base(DeclarativeBase):
    pass


class Visit(Base):
    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page: Mapped[str] = mapped_column(String(2048), nullable=False)
    referrer: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), index=True
    )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "page": self.page,
            "referrer": self.referrer,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def make_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        # Keep the password out of SQLAlchemy's own logging and reprs.
        hide_parameters=True,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar()
        if exists is None:
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def schema_window(engine: Engine) -> list[str] | None:
    """The code schema heads the database admits (velocity_app.migrate), newest first.

    None when no migration has recorded a window yet (a database migrated before the
    window existed): then only code exactly at the database head may serve.
    """
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('public.velocity_schema_window')")).scalar() is None:
            return None
        rows = conn.execute(text("SELECT code_head FROM velocity_schema_window ORDER BY position")).scalars()
        return list(rows)
