"""`webhooks dispatch | replay | replay-dead`: the outbox of shop webhooks."""

from __future__ import annotations

import asyncio
import logging
import signal

import click
import httpx

from app.cli.common import BadInput, CliContext, database, exit_with, pass_cli, run
from app.db import utcnow
from app.webhooks.repository import OutboxRepository


@click.group()
def webhooks() -> None:
    """The outbox of shop webhooks."""


@webhooks.command()
@click.option("--once", is_flag=True, help="One batch, then exit.")
@pass_cli
def dispatch(obj: CliContext, once: bool) -> None:
    """Deliver pending events (a worker; stops on SIGINT/SIGTERM after its batch)."""
    from app.webhooks.dispatcher import DispatchConfig, Dispatcher

    settings = obj.load_settings()
    config = DispatchConfig.from_settings(settings)
    if config is None:
        raise BadInput("SHOP_WEBHOOK_URL and SHOP_WEBHOOK_SECRET are not set")
    if not once:
        logging.getLogger().setLevel(logging.INFO)  # a worker reports what it does

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)  # finish the batch in flight, then stop
        async with database(settings) as sessionmaker, httpx.AsyncClient() as http:
            dispatcher = Dispatcher(sessionmaker, http, config)
            if once:
                click.echo(f"sent {await dispatcher.run_once()} event(s)")
            else:
                await dispatcher.run_forever(stop)

    run(work())


def _replay_events(obj: CliContext, event_id: str | None) -> None:
    settings = obj.load_settings()

    async def work() -> int:
        async with database(settings) as sessionmaker, sessionmaker() as session:
            count = await OutboxRepository(session).replay(event_id=event_id, now=utcnow())
            await session.commit()
        return count

    count = run(work())
    click.echo(f"replayed {count} event(s)")
    exit_with(0 if count or event_id is None else 1)


@webhooks.command("replay")
@click.argument("event_id")
@pass_cli
def webhooks_replay(obj: CliContext, event_id: str) -> None:
    """Send one event again."""
    _replay_events(obj, event_id)


@webhooks.command("replay-dead")
@pass_cli
def webhooks_replay_dead(obj: CliContext) -> None:
    """Send every dead event again."""
    _replay_events(obj, None)
