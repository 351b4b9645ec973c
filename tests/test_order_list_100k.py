"""GET /orders on PostgreSQL with 100,000 orders: filters, totals against SQL, stable pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.main import create_app
from harness.bulk import insert_orders
from harness.postgres import PostgresServer
from tests.fake_payletter import FakePayletter
from tests.support import client_for, make_settings, migrated_postgres_url, running

ROWS = 100_000


@pytest.fixture(scope="module")
def big_url(postgres: PostgresServer | None) -> str:
    """A database of its own, seeded once for the module (seeding takes a few seconds)."""
    return migrated_postgres_url(postgres)


@pytest.fixture(scope="module")
async def pg_engine(big_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(big_url)
    async with engine.begin() as conn:
        await insert_orders(conn, ROWS)
    yield engine
    async with engine.begin() as conn:  # TEST_DATABASE_URL may be shared with other tests
        await conn.execute(text("TRUNCATE orders CASCADE"))
    await engine.dispose()


@pytest.fixture
async def big(big_url: str, pg_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(make_settings(big_url), FakePayletter().transport)
    async with running(app), client_for(app, authorization="Bearer ops-token-for-tests") as c:
        yield c


async def sql_totals(engine: AsyncEngine, where: str, **params: Any) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            f"SELECT count(*), coalesce(sum(amount), 0), coalesce(sum(cancelled_amount), 0) "
            f"FROM orders WHERE {where}"), params)).one()
    return {"count": row[0], "amount": row[1], "refunded": row[2]}


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({}, "true"),
        ({"status": "paid"}, "status = 'paid'"),
        ({"status": "paid,cancelled", "pgcode": "kakaopay"},
         "status IN ('paid', 'cancelled') AND pgcode = 'kakaopay'"),
        ({"needs_review": "true"}, "status = 'needs_review'"),
        ({"user_id": "user42"}, "user_id = 'user42'"),
        ({"status": "cancelled"}, "status = 'cancelled'"),
    ],
)
async def test_totals_match_sql_over_a_hundred_thousand_orders(
    big: httpx.AsyncClient, pg_engine: AsyncEngine, params: dict[str, str], where: str
) -> None:
    body = (await big.get("/orders", params=params)).json()
    assert body["totals"] == await sql_totals(pg_engine, where)
    assert body["totals"]["count"] > 0


async def test_a_korea_date_range_matches_sql(big: httpx.AsyncClient, pg_engine: AsyncEngine
                                              ) -> None:
    async with pg_engine.connect() as conn:
        day = (await conn.execute(text(
            "SELECT ((now() AT TIME ZONE 'Asia/Seoul') - interval '10 days')::date"))).scalar()
    body = (await big.get("/orders", params={"created_from": str(day), "created_to": str(day),
                                             "status": "paid"})).json()
    expected = await sql_totals(
        pg_engine, "status = 'paid' AND (created_at AT TIME ZONE 'Asia/Seoul')::date = :day",
        day=day)
    assert body["totals"] == expected and expected["count"] > 100


async def test_paging_a_filter_neither_skips_nor_repeats_while_orders_arrive(
    big: httpx.AsyncClient, pg_engine: AsyncEngine
) -> None:
    params = {"status": "paid", "pgcode": "creditcard", "limit": "500"}
    expected = (await sql_totals(pg_engine, "status = 'paid' AND pgcode = 'creditcard'"))["count"]
    seen: list[str] = []
    cursor = None
    arrivals = 0
    while True:
        r = (await big.get("/orders", params={**params, **({"cursor": cursor} if cursor else {})}
                           )).json()
        seen += [i["order_no"] for i in r["items"]]
        cursor = r["next_cursor"]
        if cursor is None:
            break
        async with pg_engine.begin() as conn:  # new paid card orders keep arriving
            await insert_orders(conn, 20, prefix=f"NEW{arrivals}-", days=0)
        arrivals += 1
    assert len(seen) == len(set(seen)) == expected
    assert not [o for o in seen if o.startswith("NEW")]  # newer than page 1: not mid-listing
