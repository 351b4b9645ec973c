"""Operator commands: `payletter-gateway serve | migrate | check-config | webhooks ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from app.settings import Settings

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


def _run_with_database(work: Callable[[Settings, async_sessionmaker[AsyncSession]],
                                      Awaitable[int]]) -> int:
    from app.db import create_engine, create_sessionmaker
    from app.settings import load_settings

    async def run() -> int:
        settings = load_settings()
        engine = create_engine(settings.database_url)
        try:
            return await work(settings, create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def webhooks_dispatch(args: argparse.Namespace) -> int:
    import httpx

    from app.services.dispatcher import DispatchConfig, Dispatcher

    async def work(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        config = DispatchConfig.from_settings(settings)
        if config is None:
            print("SHOP_WEBHOOK_URL and SHOP_WEBHOOK_SECRET are not set", file=sys.stderr)
            return 2
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)  # finish the batch in flight, then stop
        async with httpx.AsyncClient() as http:
            dispatcher = Dispatcher(sessionmaker, http, config)
            if args.once:
                sent = await dispatcher.run_once()
                print(f"sent {sent} event(s)")
            else:
                await dispatcher.run_forever(stop)
        return 0

    return _run_with_database(work)


def webhooks_replay(args: argparse.Namespace) -> int:
    from app.db import utcnow
    from app.repositories import OutboxRepository

    async def work(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        async with sessionmaker() as session, session.begin():
            count = await OutboxRepository(session).replay(event_id=args.event_id,
                                                           now=utcnow())
        print(f"replayed {count} event(s)")
        return 0 if count or args.event_id is None else 1

    return _run_with_database(work)


def _korea_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD") from None


def reconcile_day(args: argparse.Namespace) -> int:
    """Reconcile a Korea date; exit 0 when the run completed, 1 when it failed."""
    import json

    import httpx

    from app.errors import AppError
    from app.gateway import Gateway
    from app.payletter.client import PayletterClient
    from app.services.reconcile import reconcile, report_table, run_detail, yesterday_in_korea

    async def work(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        day = args.date or yesterday_in_korea()
        async with httpx.AsyncClient() as http:
            payletter = PayletterClient(base_url=settings.api_base_url,
                                        merchants=settings.merchants, http=http,
                                        timeout=settings.payletter_timeout_seconds)
            gateway = Gateway(settings, sessionmaker.kw["bind"], sessionmaker, payletter)
            try:
                async with sessionmaker() as session, session.begin():
                    run = await reconcile(session, gateway, day, actor="cli")
                    detail = await run_detail(session, run)
            except AppError as exc:
                print(f"reconcile: {exc.message}", file=sys.stderr)
                return 2
        print(json.dumps(detail, ensure_ascii=False, indent=2) if args.json
              else report_table(detail))
        return 0 if detail["status"] == "completed" else 1

    return _run_with_database(work)


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
    hooks = commands.add_parser("webhooks", help="the outbox of shop webhooks")
    hook_commands = hooks.add_subparsers(dest="webhooks_command", required=True)
    dispatch = hook_commands.add_parser("dispatch", help="deliver pending events (a worker)")
    dispatch.add_argument("--once", action="store_true", help="one batch, then exit")
    dispatch.set_defaults(func=webhooks_dispatch)
    replay = hook_commands.add_parser("replay", help="send one event again")
    replay.add_argument("event_id")
    replay.set_defaults(func=webhooks_replay)
    replay_dead = hook_commands.add_parser("replay-dead", help="send every dead event again")
    replay_dead.set_defaults(func=webhooks_replay, event_id=None)
    recon = commands.add_parser(
        "reconcile", help="compare a Korea date with Payletter's transaction list")
    recon.add_argument("--date", type=_korea_date, default=None,
                       help="Korea date, YYYY-MM-DD (default: yesterday in Korea)")
    recon.add_argument("--json", action="store_true", help="the report as JSON")
    recon.set_defaults(func=reconcile_day)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
