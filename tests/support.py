"""Helpers the tests share (conftest.py holds the fixtures only): the service's settings for
a test, the app running in-process and clients for it, a scalar from SQL, a migrated
PostgreSQL database, an engine whose tables are emptied after the test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.models import Base
from app.settings import Settings
from harness.postgres import PostgresServer, run_migrations

PAYLETTER_IP = "121.254.205.166"  # the test environment's callback address


def migrated_postgres_url(server: PostgresServer | None) -> str:
    """A migrated database on `server`; without PostgreSQL the test is skipped (under CI=true
    it fails)."""
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no PostgreSQL: set TEST_DATABASE_URL or install "
                        "PostgreSQL's server binaries")
        pytest.skip("no PostgreSQL available (set TEST_DATABASE_URL to run these)")
    url = server.create_database("gateway_test")
    run_migrations(url)
    return url


@asynccontextmanager
async def emptied_after(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `url`; every table is emptied when the test is done."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())
        await engine.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "payletter_env": "sim",
        "payletter_base_url": "http://payletter.localhost/",
        "payletter_callback_ips": PAYLETTER_IP,
        "public_base_url": "http://gateway.localhost",
        "shop_api_token": "shop-token-for-tests",
        "ops_api_token": "ops-token-for-tests",
        "payletter_timeout_seconds": 2.0,
        "reconcile_daily_at": "off",
        "sync_sweeper": False,  # tests run the sweeper themselves (sweep_once)
        # Tests send many wrong tokens from one address (the auth matrix walks every route);
        # tests/test_auth_throttle.py sets the limit it proves.
        "auth_failure_limit": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI, peer: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.localhost",
                             headers=headers)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


def fail_next_commit(monkeypatch: pytest.MonkeyPatch, engine: AsyncEngine) -> None:
    """The next callback's commit fails as a lost connection would: on PostgreSQL the one
    statement of a signed callback (its own commit), on SQLite the session's commit."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.payments import service

    failures = iter([True])
    lost = OperationalError("COMMIT", {}, Exception("server closed the connection"))
    if engine.dialect.name == "postgresql":
        real_apply = service.apply_signed_callback

        async def flaky_apply(*args: Any) -> tuple[str, int | None]:
            if next(failures, False):
                raise lost
            return await real_apply(*args)

        monkeypatch.setattr(service, "apply_signed_callback", flaky_apply)
        return
    real_commit = AsyncSession.commit

    async def flaky_commit(self: AsyncSession) -> None:
        if next(failures, False):
            raise lost
        await real_commit(self)

    monkeypatch.setattr(AsyncSession, "commit", flaky_commit)
