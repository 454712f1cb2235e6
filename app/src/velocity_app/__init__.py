"""Velocity site-visits service.

``create_app`` is the only entry point; configuration comes from the
environment (see :mod:`velocity_app.config`).
"""

from velocity_app.factory import create_app

__all__ = ["create_app"]
__version__ = "0.1.0"
