"""Gunicorn configuration for local runs: `gunicorn -c app/gunicorn.conf.py velocity_app.wsgi:app`.

The settings live in the package (velocity_app/gunicorn_conf.py) so the image
and a checkout use the same file.
"""

from velocity_app.gunicorn_conf import *  # noqa: F403
