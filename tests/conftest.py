"""The fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL, else the server on 127.0.0.1:5432 (a fresh
database is created for the run), else a throwaway cluster started from the server
binaries. Under CI=true a missing PostgreSQL fails the run instead of skipping.

Tests commit for real (the invariants are about what is committed), so each test starts
from empty tables instead of rolling back. The helpers the tests import are in support.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import create_sessionmaker
from app.main import create_app
from harness.postgres import PostgresServer, find_postgres, run_migrations
from tests.fake_payletter import FakePayletter
from tests.support import (
    PAYLETTER_IP,
    client_for,
    emptied_after,
    make_settings,
    migrated_postgres_url,
    running,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    server = find_postgres()
    yield server
    if server is not None:
        server.close()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database of each backend, shared by the tests of one session."""
    if request.param == "postgresql":
        return migrated_postgres_url(request.getfixturevalue("postgres"))
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'gateway.db'}"
    run_migrations(url)
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer | None) -> str:
    """A migrated PostgreSQL database of its own, for outage and multi-process tests."""
    return migrated_postgres_url(postgres)


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


@pytest.fixture
async def gateway_app(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> AsyncIterator[FastAPI]:
    """The service with Payletter replaced by an in-process fake."""
    app = create_app(make_settings(database_url), payletter_transport=fake_payletter.transport)
    async with running(app):
        yield app


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
