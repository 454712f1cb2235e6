"""Velocity site-visits service.

``create_app`` is the only entry point; configuration comes from the
environment (see :mod:`velocity_app.config`). It is imported on first use
(PEP 562), so that ``velocity-app healthcheck``, which Docker runs every few
seconds in the container, starts without loading Flask and the rest of the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from velocity_app.factory import create_app

__all__ = ["create_app"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from velocity_app.factory import create_app

        return create_app
    raise AttributeError(f"module 'velocity_app' has no attribute {name!r}")
