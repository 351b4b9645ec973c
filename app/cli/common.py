"""What every command shares: the context (settings, a transport standing in for Payletter),
errors and exit codes (2: bad input, 1: a failure), running a command's coroutine, JSON
output, a database, date options."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import click
import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker
from app.errors import AppError
from app.gateway import Gateway, open_gateway
from app.kit.korea_time import parse_day
from app.settings import ConfigError, Settings, load_settings

ACTOR = "cli"  # the audit rows' actor for what an operator does here
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("app.cli")  # one logger for every command


@dataclass
class CliContext:
    """What the commands share. Tests pass settings and a transport standing in for Payletter;
    otherwise the settings come from the environment, like the service's."""

    settings: Settings | None = None
    payletter_transport: httpx.AsyncBaseTransport | None = None

    def load_settings(self) -> Settings:
        if self.settings is None:
            try:
                self.settings = load_settings()
            except ConfigError as exc:
                raise BadInput(f"configuration error: {exc}") from None
        return self.settings


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


class CliError(click.ClickException):
    """One line on stderr; exit 1: something failed."""

    exit_code = 1


class BadInput(CliError):
    """Exit 2: the request can't be done as asked."""

    exit_code = 2


def run(work: Coroutine[Any, Any, T], *, as_json: bool = False) -> T:
    """Run a command's coroutine; service errors become one line and an exit code."""
    try:
        return asyncio.run(work)
    except AppError as exc:
        if as_json:
            emit_json(exc.to_body())
        # 4xx: the request can't be done as asked (2); 5xx: something failed (1)
        raise (BadInput if exc.status_code < 500 else CliError)(exc.message) from None
    except ConfigError as exc:
        raise BadInput(f"configuration error: {exc}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {_first_line(exc)}") from None
    except BrokenPipeError:
        raise
    except OSError as exc:  # the database unreachable, an output file not writable
        raise CliError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def emit_json(body: Any) -> None:
    click.echo(json.dumps(body, ensure_ascii=False, indent=2))


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON (and only JSON) on stdout.")(f)


def exit_with(code: int) -> None:
    if code:
        raise click.exceptions.Exit(code)


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url, **settings.pool_options)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def run_in_gateway(obj: CliContext, action: Callable[[Gateway, AsyncSession], Awaitable[T]],
                   *, as_json: bool = False) -> T:
    """`run` an action on the gateway as the service runs it (Payletter through the
    context's transport, if any) and a session on its database; commit what it did."""
    settings = obj.load_settings()

    async def work() -> T:
        async with open_gateway(settings, payletter_transport=obj.payletter_transport
                                ) as gateway, gateway.sessionmaker() as session:
            result = await action(gateway, session)
            await session.commit()
        return result

    return run(work(), as_json=as_json)


def korea_date(ctx: click.Context, param: click.Parameter, value: str | None
               ) -> date | None:
    """An option's value as a date (YYYY-MM-DD, read as a Korea date, in the range every
    entry point accepts); bad input is one line and exit 2."""
    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise BadInput(f"invalid value for {param.opts[0]}: {exc}") from None
