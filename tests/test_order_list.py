"""GET /orders: filters, keyset pages, totals and CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.models import Order
from tests.factories import callback_body, create_order


async def seed(engine: AsyncEngine, count: int, prefix: str = "S", **overrides: Any) -> None:
    """`count` orders straight into the table (created a minute apart, newest last)."""
    start = utcnow() - timedelta(minutes=count)
    rows = []
    for n in range(count):
        at = start + timedelta(minutes=n)
        row = dict(order_no=f"{prefix}{n:06d}", client_id="pay_test",
                   pgcode=("creditcard", "mobile", "kakaopay")[n % 3],
                   status=("paid", "pending", "failed", "needs_review")[n % 4],
                   amount=1000 + n, taxfree_amount=0, tax_amount=91, cancelled_amount=0,
                   product_name="p", user_id=f"u{n % 10}", request_options={},
                   payment_details={}, created_at=at, updated_at=at,
                   paid_at=at if n % 4 == 0 else None,
                   tid=f"T{prefix}{n:06d}" if n % 4 == 0 else None)
        row.update(overrides)
        rows.append(row)
    async with engine.begin() as conn:
        await conn.execute(insert(Order), rows)


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await client.get("/orders", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_filters_combine_and_totals_cover_the_whole_match(
    ops: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(engine, 40)
    r = await ops.get("/orders", params={"status": "paid", "pgcode": "creditcard", "limit": 2})
    body = r.json()
    expected = [n for n in range(40) if n % 4 == 0 and n % 3 == 0]
    assert body["totals"] == {"count": len(expected),
                              "amount": sum(1000 + n for n in expected), "refunded": 0}
    assert len(body["items"]) == 2 and body["next_cursor"]
    assert body["items"][0]["order_no"] == f"S{expected[-1]:06d}"  # newest first
    assert body["filters"] == {"status": "paid", "pgcode": "creditcard"}
    review = (await ops.get("/orders", params={"needs_review": "true"})).json()
    assert review["totals"]["count"] == 10
    assert {i["status"] for i in review["items"]} == {"needs_review"}
    several = (await ops.get("/orders", params={"status": "paid,failed"})).json()
    assert several["totals"]["count"] == 20
    one = (await ops.get("/orders", params={"tid": "TS000008"})).json()
    assert [i["order_no"] for i in one["items"]] == ["S000008"]
    user = (await ops.get("/orders", params={"user_id": "u3"})).json()
    assert user["totals"]["count"] == 4


async def test_keyset_pages_neither_skip_nor_repeat_while_orders_arrive(
    ops: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await seed(engine, 50)
    seen: list[str] = []
    r = (await ops.get("/orders", params={"limit": 7})).json()
    seen += [i["order_no"] for i in r["items"]]
    cursor = r["next_cursor"]
    arriving = 0
    while cursor:
        await seed(engine, 1, prefix=f"NEW{arriving}-")  # a new order lands mid-listing
        arriving += 1
        r = (await ops.get("/orders", params={"limit": 7, "cursor": cursor})).json()
        seen += [i["order_no"] for i in r["items"]]
        cursor = r["next_cursor"]
    assert seen == [f"S{n:06d}" for n in reversed(range(50))]


@pytest.mark.parametrize("sort", ["created_at", "-created_at", "amount", "-amount", "paid_at",
                                  "-paid_at"])
async def test_every_sort_pages_through_every_row_once(
    ops: httpx.AsyncClient, engine: AsyncEngine, sort: str
) -> None:
    await seed(engine, 23)
    items = await all_pages(ops, sort=sort, limit=5)
    column = sort.lstrip("-")
    expected = 23 if column != "paid_at" else 6
    assert len(items) == expected
    assert len({i["order_no"] for i in items}) == expected
    values = [i[column] for i in items]
    assert values == sorted(values, reverse=sort.startswith("-"))


async def test_dates_are_korea_days(ops: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # 2026-03-01 23:30 KST is 14:30 UTC: it belongs to Korea's March 1st.
    at = datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
    await seed(engine, 1, prefix="KST1-", created_at=at, updated_at=at)
    late = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 00:30 on March 2nd in Korea
    await seed(engine, 1, prefix="KST2-", created_at=late, updated_at=late)
    march1 = (await ops.get("/orders", params={"created_from": "2026-03-01",
                                               "created_to": "2026-03-01"})).json()
    assert [i["order_no"] for i in march1["items"]] == ["KST1-000000"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "shipped"}, "status"), ({"created_from": "yesterday"}, "created_from"),
     ({"created_from": "2026-03-02", "created_to": "2026-03-01"}, "created_to"),
     ({"sort": "user_id"}, "sort"), ({"limit": "0"}, "limit"), ({"limit": "100000"}, "limit"),
     ({"cursor": "garbage"}, "cursor"), ({"statuss": "paid"}, "statuss"),
     ({"needs_review": "maybe"}, "needs_review"), ({"user_id": "u" * 51}, "user_id")],
)
async def test_bad_parameters_get_a_clear_422(
    ops: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    r = await ops.get("/orders", params=params)
    assert r.status_code == 422, r.text
    assert field in r.text


async def test_a_cursor_from_another_sort_is_refused(ops: httpx.AsyncClient, engine: AsyncEngine
                                                    ) -> None:
    await seed(engine, 5)
    cursor = (await ops.get("/orders", params={"limit": 2})).json()["next_cursor"]
    r = await ops.get("/orders", params={"limit": 2, "cursor": cursor, "sort": "amount"})
    assert r.status_code == 422


async def test_csv_has_every_matching_row_and_neutralises_formulas(
    ops: httpx.AsyncClient, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    engine: AsyncEngine,
) -> None:
    await seed(engine, 30)
    order = await create_order(shop, product_name="=HYPERLINK(\"http://evil\")", amount=5000)
    await payletter_peer.post("/payletter/callback", json=callback_body(order))
    r = await ops.get("/orders", params={"format": "csv", "status": "paid"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    text = r.text.lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 8 + 1
    evil = next(row for row in rows if row["order_no"] == order["order_no"])
    assert evil["product_name"].startswith("'=")
    by_accept = await ops.get("/orders", params={"status": "paid"},
                              headers={"accept": "text/csv"})
    assert by_accept.text == r.text


async def test_the_shop_token_may_read_the_list_and_strangers_may_not(
    shop: httpx.AsyncClient, gateway_app: Any
) -> None:
    from tests.support import client_for

    assert (await shop.get("/orders")).status_code == 200
    async with client_for(gateway_app) as anonymous:
        assert (await anonymous.get("/orders")).status_code == 401
        assert (await anonymous.get("/orders", params={"format": "csv"})).status_code == 401
