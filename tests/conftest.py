"""The test harness: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL, else the server on 127.0.0.1:5432 (a fresh
database is created for the run), else a throwaway cluster started from the server
binaries. Under CI=true a missing PostgreSQL fails the run instead of skipping.

Tests commit for real (the invariants are about what is committed), so each test starts
from empty tables instead of rolling back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.models import Base
from app.settings import Settings
from harness.postgres import PostgresServer, find_postgres, run_migrations
from tests.fake_payletter import FakePayletter

BACKENDS = ["sqlite", "postgresql"]
PAYLETTER_IP = "121.254.205.166"  # the test environment's callback address


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    server = find_postgres()
    yield server
    if server is not None:
        server.close()


def _postgres_url(server: PostgresServer | None) -> str:
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no PostgreSQL: set TEST_DATABASE_URL or install "
                        "PostgreSQL's server binaries")
        pytest.skip("no PostgreSQL available (set TEST_DATABASE_URL to run these)")
    url = server.create_database("gateway_test")
    run_migrations(url)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database of each backend, shared by the tests of one session."""
    if request.param == "postgresql":
        return _postgres_url(request.getfixturevalue("postgres"))
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'gateway.db'}"
    run_migrations(url)
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer | None) -> str:
    """A migrated PostgreSQL database of its own, for outage and multi-process tests."""
    return _postgres_url(postgres)


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


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with emptied_after(database_url) as engine:
        yield engine


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    async with emptied_after(postgres_url) as engine:
        yield engine


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def fake_payletter() -> FakePayletter:
    return FakePayletter()


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


ClientFactory = Callable[..., Any]


@pytest.fixture
async def gateway_app(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> AsyncIterator[FastAPI]:
    """The service with Payletter replaced by an in-process fake."""
    app = create_app(make_settings(database_url), payletter_transport=fake_payletter.transport)
    async with running(app):
        yield app


def client_for(app: FastAPI, peer: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.localhost",
                             headers=headers)


@pytest.fixture
async def shop(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gateway_app, authorization="Bearer shop-token-for-tests") as c:
        yield c


@pytest.fixture
async def ops(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gateway_app, authorization="Bearer ops-token-for-tests") as c:
        yield c


@pytest.fixture
async def payletter_peer(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Calls from Payletter's callback address."""
    async with client_for(gateway_app, peer=PAYLETTER_IP) as c:
        yield c


@pytest.fixture
async def browser(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The buyer's browser: any address, no token, doesn't follow redirects."""
    async with client_for(gateway_app, peer="203.0.113.7") as c:
        yield c


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()
