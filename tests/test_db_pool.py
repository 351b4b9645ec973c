"""The PostgreSQL pool pings a connection at checkout only after it sat idle (app/db.py).

Under load a connection comes back out of the pool within milliseconds; pinging it each
time (BEGIN, ";", ROLLBACK on asyncpg) cost a quarter of a callback's round trips. One that
sat idle is still pinged, so a database that went away and came back while the service was
quiet costs no request.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import PING_IDLE_AFTER_SECONDS, create_engine
from app.main import create_app
from tests.support import make_settings, running
from tests.tcp_proxy import TcpProxy


def counting_pings(engine: AsyncEngine) -> list[int]:
    dialect = engine.sync_engine.dialect
    pings: list[int] = []
    do_ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return do_ping(dbapi_connection)

    dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


async def select_one(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT 1"))).scalar_one())


async def test_a_busy_connection_is_not_pinged_an_idle_one_is(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    pings = counting_pings(engine)
    try:
        for _ in range(5):  # a fresh connection, then the same one straight back
            assert await select_one(engine) == 1
        assert pings == []
        await asyncio.sleep(PING_IDLE_AFTER_SECONDS + 0.2)
        assert await select_one(engine) == 1
        assert len(pings) == 1
    finally:
        await engine.dispose()


async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    postgres_url: str,
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    credentials = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else "postgres"
    engine = create_engine(urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:"
                                                                f"{proxy.port}")))
    try:
        assert await select_one(engine) == 1
        await proxy.cut()  # the pooled connection dies while nobody uses it
        await proxy.restore()
        await asyncio.sleep(PING_IDLE_AFTER_SECONDS + 0.2)
        assert await select_one(engine) == 1  # the ping found it dead; a new one answered
    finally:
        await engine.dispose()
        await proxy.cut()


async def test_the_pool_sizes_come_from_the_settings_and_bound_the_connections(
    postgres_url: str,
) -> None:
    """DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW is the most a process opens; more
    concurrent work waits for a connection instead of opening another."""
    settings = make_settings(postgres_url, database_pool_size=2, database_max_overflow=1)
    async with running(create_app(settings)) as app:
        engine: AsyncEngine = app.state.gateway.engine

        async def hold() -> int:
            async with engine.connect() as conn:
                pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
                await conn.execute(text("SELECT pg_sleep(0.2)"))
                return pid

        pids = await asyncio.gather(*(hold() for _ in range(8)))
    assert len(pids) == 8
    assert len(set(pids)) == 3, pids  # 2 pooled + 1 overflow, reused by the other five


def test_pool_sizes_out_of_range_are_refused_at_start() -> None:
    for name, value in (("database_pool_size", 0), ("database_max_overflow", -1)):
        with pytest.raises(ValidationError, match=name):
            make_settings("sqlite+aiosqlite:///:memory:", **{name: value})
