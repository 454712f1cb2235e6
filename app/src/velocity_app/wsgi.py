"""WSGI entry point for Gunicorn: ``velocity_app.wsgi:app``."""

from velocity_app.factory import create_app

app = create_app()
