"""``velocity-app``: migrate the schema, check the configuration, probe health, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from velocity_app.config import ConfigError, load_secrets_dir, load_settings


def _migrate(args: argparse.Namespace) -> int:
    from velocity_app.db import make_engine, schema_revision, schema_window
    from velocity_app.logs import configure_logging
    from velocity_app.migrate import downgrade, upgrade

    settings = load_settings()
    configure_logging(settings.log_level, settings.service_name, settings.secret_values())
    engine = make_engine(settings)
    started = time.monotonic()
    try:
        before = schema_revision(engine)
        if args.revision.startswith("-") or args.downgrade:
            downgrade(engine, args.revision)
        else:
            upgrade(engine, args.revision)
        after, window = schema_revision(engine), schema_window(engine)
    finally:
        engine.dispose()
    # One line for the Job's log: where the schema went and which code heads may now serve.
    print(json.dumps({"migrated": {"from": before, "to": after}, "schema_window": window,
                      "duration_s": round(time.monotonic() - started, 3)}))
    return 0


def _schema_info(_args: argparse.Namespace) -> int:
    from velocity_app.migrate import code_window, schema_head

    # No database needed: read from the migrations this image ships.
    print(json.dumps({"schema_head": schema_head(), "schema_window": list(code_window())}))
    return 0


def _check_config(_args: argparse.Namespace) -> int:
    settings = load_settings()
    # Names only: this output may end up in CI logs.
    print(json.dumps({"ok": True, "log_level": settings.log_level, "service_name": settings.service_name}))
    return 0


def _healthcheck(args: argparse.Namespace) -> int:
    if urllib.parse.urlsplit(args.url).scheme not in ("http", "https"):
        print(f"velocity-app: --url must be http(s)://..., got {args.url!r}", file=sys.stderr)
        return 2
    try:
        # The scheme is checked above, so file:// and friends cannot get here.
        with urllib.request.urlopen(args.url, timeout=args.timeout) as resp:  # noqa: S310  # nosec B310
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"velocity-app: health check {args.url} failed: {exc}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    load_settings()  # fail here, with the variable's name, not inside a worker
    # The interpreter running us has gunicorn installed; PATH may not point at it.
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:velocity_app.gunicorn_conf",
            *args.gunicorn_args, "velocity_app.wsgi:app"]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with gunicorn
    return 0  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="velocity-app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="apply database migrations (default: to head)")
    p.add_argument("revision", nargs="?", default="head")
    p.add_argument("--downgrade", action="store_true", help="go down to REVISION")
    p.set_defaults(func=_migrate)
    p = sub.add_parser("schema-info", help="print this release's schema head and the window its migrations leave")
    p.set_defaults(func=_schema_info)
    p = sub.add_parser("check-config", help="validate the environment and exit")
    p.set_defaults(func=_check_config)
    p = sub.add_parser("healthcheck", help="GET a health URL; exit 0 when it answers 200")
    p.add_argument("--url", default="http://127.0.0.1:8000/healthz")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=_healthcheck)
    p = sub.add_parser("serve", help="run Gunicorn with the service's settings")
    p.add_argument("gunicorn_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_serve)
    args = parser.parse_args(argv)
    try:
        # The mounted Secret (VELOCITY_SECRETS_DIR) becomes environment: `serve` hands it on to Gunicorn by exec.
        load_secrets_dir()
        return int(args.func(args))
    except ConfigError as exc:
        print(f"velocity-app: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
