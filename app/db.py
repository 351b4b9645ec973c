"""Engine, session factory and the declarative base.

SQLite is the embedded default: every transaction starts with BEGIN IMMEDIATE so writers
queue on the database lock (busy_timeout) instead of failing half-way, which is what row
locks (`SELECT … FOR UPDATE`) give us on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The database file an SQLite URL names (None for PostgreSQL or an in-memory one)."""
    if not is_sqlite(url) or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def create_engine(url: str, *, pool_size: int = 30, max_overflow: int = 0,
                  **kwargs: Any) -> AsyncEngine:
    if is_sqlite(url):
        # One writer at a time anyway (BEGIN IMMEDIATE): SQLAlchemy's default pool is plenty.
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    ping_when_idle = "pool_pre_ping" not in kwargs
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_timeout", 5)
    kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
    engine = create_async_engine(url, **kwargs)
    if ping_when_idle:
        _ping_when_idle(engine)
    return engine


# A pooled connection used less than this long ago is taken as alive without a ping.
PING_IDLE_AFTER_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float = PING_IDLE_AFTER_SECONDS) -> None:
    """pool_pre_ping, but only for connections that sat in the pool for `idle_seconds`.

    SQLAlchemy's pre-ping pings at every checkout, and on asyncpg a ping is three round trips
    (BEGIN, ";", ROLLBACK): under load, where a connection goes back out within
    milliseconds, that was a quarter of a callback's round trips. A connection that died
    inside the window fails its first statement instead: the request answers an error (a
    callback non-zero, so Payletter redelivers) and SQLAlchemy drops the pool's connections,
    as for any disconnect. Nothing acknowledged depends on the ping.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # As pool_pre_ping does: drop this and older connections, connect anew.
                raise InvalidatePoolError() from exc
            raise


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def commit_before_call(session: AsyncSession) -> None:
    """End the transaction before calling Payletter (or anyone) over HTTP.

    What the service flushed so far (the order or refund it is about to send: the intent)
    is committed, so whatever the call does can be matched with a record we keep; and no
    lock (a row lock, SQLite's write lock) is held while we wait on the network. Changes
    still only in the session (not flushed) are refused: they would be committed by
    accident. This is the one exception to "the request commits once": services use it
    right before a call out, and flush otherwise.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("unflushed changes before a call out: flush() what is meant to be "
                           "committed first")
    await session.commit()


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session per request; commits once at the end, rolls back on any error."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
