"""The sweeper reaches every stale order, however many a sync leaves unchanged.

Virtual accounts waiting for their deposit stay `awaiting_deposit` after a sync, and orders
Payletter won't answer about (here: a 401, a merchant whose key is wrong) stay `pending`.
Read oldest first, 100 a pass, the same 100 came back forever and the rest were never asked
about. Payletter is the in-process fake: it records every payments/status call.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.gateway import Gateway, open_gateway
from app.models import Order, Refund
from app.payments import sweeper
from app.payments.sweeper import SweepCursors, run_sweeper, sweep_once
from tests.fake_payletter import FakePayletter
from tests.support import make_settings

STALE_ORDERS = 250  # the sweeper reads 100 a pass
STATUS = "v1.0/payments/status"


async def add_stale_orders(engine: AsyncEngine, status: str, count: int) -> list[str]:
    """`count` orders in `status`, last changed two hours ago (all equally old)."""
    then = utcnow() - timedelta(hours=2)
    rows: list[dict[str, Any]] = [dict(
        order_no=f"W{n:05d}", client_id="pay_test",
        pgcode="virtualaccount" if status == "awaiting_deposit" else "creditcard",
        status=status, amount=1000, taxfree_amount=0, tax_amount=91, cancelled_amount=0,
        product_name="p", user_id="u1", request_options={}, payment_details={},
        created_at=then, updated_at=then) for n in range(count)]
    async with engine.begin() as conn:
        await conn.execute(insert(Order), rows)
    return [row["order_no"] for row in rows]


def unsettled(fake: FakePayletter, status: str) -> None:
    """Payletter leaves every order as it is: no deposit yet, or no answer at all."""
    if status == "pending":
        fake.failures[STATUS] = (401, {"code": 998, "message": "Unauthorized"})
    # awaiting_deposit: the fake knows no payment (406), and the account has no deadline


@pytest.fixture
async def gateway(database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
                  ) -> AsyncIterator[Gateway]:
    settings = make_settings(database_url, sync_interval_seconds=0.01)
    async with open_gateway(settings, payletter_transport=fake_payletter.transport) as gw:
        yield gw


def asked(fake: FakePayletter) -> list[str]:
    return [body["order_no"] for body in fake.calls_to(STATUS)]


@pytest.mark.parametrize("status", ["awaiting_deposit", "pending"])
async def test_three_passes_of_the_running_sweeper_ask_payletter_about_all_250(
    gateway: Gateway, engine: AsyncEngine, fake_payletter: FakePayletter, status: str
) -> None:
    order_nos = await add_stale_orders(engine, status, STALE_ORDERS)
    unsettled(fake_payletter, status)
    stop = asyncio.Event()
    task = asyncio.create_task(run_sweeper(gateway, stop))
    try:
        async with asyncio.timeout(60):
            while len(asked(fake_payletter)) < 300:  # three passes of 100
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    assert set(asked(fake_payletter)) == set(order_nos)


async def test_every_stale_order_gets_the_same_share_of_the_passes(
    gateway: Gateway, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    order_nos = await add_stale_orders(engine, "awaiting_deposit", STALE_ORDERS)
    cursors = SweepCursors()
    for _ in range(5):  # 500 looks at 250 orders: each one exactly twice
        assert await sweep_once(gateway, cursors) == 100
    assert Counter(asked(fake_payletter)) == dict.fromkeys(order_nos, 2)


async def test_fewer_stale_orders_than_a_batch_are_all_asked_about_every_pass(
    gateway: Gateway, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    order_nos = await add_stale_orders(engine, "awaiting_deposit", 30)
    cursors = SweepCursors()
    assert await sweep_once(gateway, cursors) == 30
    assert await sweep_once(gateway, cursors) == 30  # fewer than a batch: all, every pass
    assert Counter(asked(fake_payletter)) == dict.fromkeys(order_nos, 2)


async def test_refunds_left_unknown_are_walked_the_same_way(
    gateway: Gateway, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payletter's transaction list can't be read (the fake doesn't serve it), so every
    unknown refund stays unknown: 150 of them, two passes, each looked at."""
    await add_stale_orders(engine, "paid", 150)
    then = utcnow() - timedelta(hours=2)
    async with engine.begin() as conn:
        await conn.execute(Order.__table__.update().values(tid="T-" + Order.order_no))
        order_ids = (await conn.execute(select(Order.id))).scalars().all()
        await conn.execute(insert(Refund), [dict(
            order_id=order_id, kind="full", amount=1000, taxfree_amount=0, status="unknown",
            requested_by="ops", created_at=then, updated_at=then) for order_id in order_ids])
        refund_ids = (await conn.execute(select(Refund.id))).scalars().all()
    looked_at: list[int] = []
    settle = sweeper.settle_refund

    async def recording(session: Any, gw: Gateway, refund_id: int, **kwargs: Any) -> str:
        looked_at.append(refund_id)
        return await settle(session, gw, refund_id, **kwargs)

    monkeypatch.setattr(sweeper, "settle_refund", recording)
    cursors = SweepCursors()
    await sweep_once(gateway, cursors)
    await sweep_once(gateway, cursors)
    assert set(looked_at) == set(refund_ids) and len(looked_at) == 200
