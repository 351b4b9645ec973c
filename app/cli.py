"""Operator commands: `payletter-gateway serve | migrate | check-config`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    # proxy_headers=False: the app alone decides who is calling (TRUSTED_PROXIES).
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers,
                proxy_headers=False, log_level=args.log_level)
    return 0


def migrate(args: argparse.Namespace) -> int:
    from alembic import command
    from alembic.config import Config

    command.upgrade(Config(str(ROOT / "alembic.ini")), args.revision)
    return 0


def check_config(args: argparse.Namespace) -> int:
    from app.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"ok: PAYLETTER_ENV={settings.payletter_env}, Payletter at {settings.api_base_url}, "
          f"merchants {', '.join(settings.merchants)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payletter-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the service")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1)
    run.add_argument("--log-level", default="info")
    run.set_defaults(func=serve)
    up = commands.add_parser("migrate", help="alembic upgrade (DATABASE_URL)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=migrate)
    check = commands.add_parser("check-config", help="load the settings and report problems")
    check.set_defaults(func=check_config)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
