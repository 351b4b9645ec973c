"""Status sync and the sweeper, against the simulator; cash receipts and receipts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.payments.sweeper import sweep_once
from tests.sim_harness import LoseAnswers, SimGateway, sim_gateway


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url) as gateway:
        yield gateway


async def lose_everything(gw: SimGateway, order: dict[str, Any]) -> None:
    """The buyer pays but neither the callback nor the browser's return reaches us."""
    await gw.sim.post("/_sim/faults", json={"drop_callbacks_for_orders": [order["order_no"]]})
    await gw.pay(order, with_return=False)


async def age(engine: AsyncEngine, order_no: str, minutes: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE orders SET updated_at = :t WHERE order_no = :n"),
                           {"t": datetime.now(UTC) - timedelta(minutes=minutes), "n": order_no})


async def test_sync_applies_a_payment_whose_callback_and_return_were_lost(
    gw: SimGateway,
) -> None:
    order = await gw.create_order(amount=7000)
    await lose_everything(gw, order)
    assert (await gw.order(order["order_no"]))["status"] == "pending"
    r = await gw.ops.post(f"/orders/{order['order_no']}/sync")
    assert r.status_code == 200
    assert r.json() == {"order_no": order["order_no"], "status_before": "pending",
                        "status": "paid", "actions": ["paid"]}
    detail = await gw.order(order["order_no"])
    assert detail["tid"]
    assert detail["transitions"][-1]["reason"].startswith("status_confirmed")
    [entry] = detail["audit"]
    assert (entry["action"], entry["outcome"], entry["actor"]) == ("sync", "paid", "ops")
    assert entry["detail"]["evidence"]["payments/status"]["status_code"] in (4, 5)
    again = await gw.ops.post(f"/orders/{order['order_no']}/sync")
    assert again.json()["actions"] == ["nothing to sync"]


async def test_sync_abandons_an_old_order_payletter_never_saw_paid(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    young = await gw.create_order()
    assert (await gw.ops.post(f"/orders/{young['order_no']}/sync")).json()["actions"] == [
        "unchanged"]
    old = await gw.create_order()
    await age(engine, old["order_no"], minutes=31)
    r = await gw.ops.post(f"/orders/{old['order_no']}/sync")
    assert r.json()["status"] == "abandoned" and r.json()["actions"] == ["abandoned"]
    assert (await gw.order(young["order_no"]))["status"] == "pending"


async def test_a_late_payment_still_wins_after_the_order_was_abandoned(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    order = await gw.create_order()
    await age(engine, order["order_no"], minutes=31)
    await gw.ops.post(f"/orders/{order['order_no']}/sync")
    assert (await gw.order(order["order_no"]))["status"] == "abandoned"
    await gw.pay(order)
    assert (await gw.order(order["order_no"]))["status"] == "paid"


async def test_the_sweeper_settles_stale_orders_by_itself(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    lost, never_paid, fresh = [await gw.create_order() for _ in range(3)]
    await lose_everything(gw, lost)
    for order in (lost, never_paid):
        await age(engine, order["order_no"], minutes=45)
    gateway = gw.service.state.gateway
    assert await sweep_once(gateway) == 2
    assert (await gw.order(lost["order_no"]))["status"] == "paid"
    assert (await gw.order(never_paid["order_no"]))["status"] == "abandoned"
    assert (await gw.order(fresh["order_no"]))["status"] == "pending"
    assert (await gw.order(lost["order_no"]))["audit"][0]["actor"] == "sweeper"


async def test_the_sweeper_settles_unknown_refunds(database_url: str, engine: AsyncEngine
                                                   ) -> None:
    lose = LoseAnswers(httpx.AsyncHTTPTransport())
    async with sim_gateway(database_url, lose=lose) as gw:
        order = await gw.create_order(amount=5000)
        await gw.pay(order)
        lose.lose("v1.0/payments/cancel")
        r = await gw.ops.post(f"/orders/{order['order_no']}/cancel", json={})
        assert r.json()["refund"]["status"] == "unknown"
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE refunds SET updated_at = :t"),
                               {"t": datetime.now(UTC) - timedelta(minutes=2)})
        await sweep_once(gw.service.state.gateway)
        detail = await gw.order(order["order_no"])
        assert detail["status"] == "cancelled"
        assert detail["refunds"][0]["status"] == "done"


async def test_sync_when_payletter_is_down_is_a_502_and_changes_nothing(
    database_url: str, engine: AsyncEngine
) -> None:
    lose = LoseAnswers(httpx.AsyncHTTPTransport())
    async with sim_gateway(database_url, lose=lose) as gw:
        order = await gw.create_order()
        lose.lose("v1.0/payments/status", reaches_payletter=False)
        r = await gw.ops.post(f"/orders/{order['order_no']}/sync")
        assert r.status_code == 502
        assert "payments/status" in r.json()["error"]["message"]
        assert (await gw.order(order["order_no"]))["status"] == "pending"


async def test_sync_needs_the_ops_token(gw: SimGateway) -> None:
    order = await gw.create_order()
    assert (await gw.shop.post(f"/orders/{order['order_no']}/sync")).status_code == 403
    assert (await gw.ops.post("/orders/nope/sync")).status_code == 404


async def test_cash_receipt_and_transaction_receipt_urls_come_from_payletter(
    gw: SimGateway,
) -> None:
    order = await gw.create_order(pgcode="banktransfer", amount=5000)
    unpaid = await gw.shop.post(f"/orders/{order['order_no']}/cash-receipt", json={})
    assert unpaid.status_code == 409
    await gw.pay(order)
    cash = await gw.shop.post(f"/orders/{order['order_no']}/cash-receipt",
                              json={"type": "1", "tax_flag": "N"})
    assert cash.status_code == 200, cash.text
    assert cash.json()["receipt_url"].startswith("http://sim.localhost/")
    receipt = await gw.ops.get(f"/orders/{order['order_no']}/receipt")
    assert receipt.status_code == 200
    assert receipt.json()["receipt_url"].startswith("http://sim.localhost/")
    page = await gw.sim.get(receipt.json()["receipt_url"].removeprefix("http://sim.localhost"))
    assert page.status_code == 200
    actions = [(a["action"], a["outcome"], a["actor"])
               for a in (await gw.order(order["order_no"]))["audit"]]
    assert actions == [("cash_receipt", "issued", "shop"), ("receipt", "shown", "ops")]
    bad = await gw.shop.post(f"/orders/{order['order_no']}/cash-receipt", json={"type": "9"})
    assert bad.status_code == 422


async def test_a_cash_receipt_refused_by_payletter_is_a_clear_422(gw: SimGateway) -> None:
    order = await gw.create_order(pgcode="creditcard", amount=5000)
    await gw.pay(order)
    r = await gw.shop.post(f"/orders/{order['order_no']}/cash-receipt", json={})
    assert r.status_code == 422
    assert "cash receipt" in r.json()["error"]["message"]
    assert (await gw.order(order["order_no"]))["audit"][-1]["outcome"] == "refused"


async def test_the_callback_s_cash_receipt_is_stored_with_the_order(gw: SimGateway) -> None:
    order = await gw.create_order(pgcode="banktransfer", amount=5000, receipt_flag="Y")
    await gw.pay(order, with_return=False)
    for _ in range(100):
        detail = await gw.order(order["order_no"])
        if detail["status"] == "paid":
            break
        await asyncio.sleep(0.01)
    assert detail["status"] == "paid"
    receipt = detail["payment_details"].get("cash_receipt")
    assert receipt is None or isinstance(receipt, dict)


async def test_a_refund_stuck_in_requested_is_settled_by_the_sweeper(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    """The process died between storing the refund and hearing Payletter's answer."""
    order = await gw.create_order(amount=6000)
    await gw.pay(order)
    r = await gw.ops.post(f"/orders/{order['order_no']}/cancel", json={"amount": 2000})
    assert r.status_code == 200
    async with engine.begin() as conn:  # rewind: as if the answer had never been recorded
        await conn.execute(text(
            "UPDATE refunds SET status = 'requested', cid = NULL, updated_at = :t"),
            {"t": datetime.now(UTC) - timedelta(minutes=5)})
        await conn.execute(text("UPDATE orders SET status = 'paid', cancelled_amount = 0"))
    blocked = await gw.ops.post(f"/orders/{order['order_no']}/cancel", json={"amount": 1000})
    assert blocked.status_code == 409  # a refund in flight blocks the next one
    await sweep_once(gw.service.state.gateway)
    detail = await gw.order(order["order_no"])
    assert detail["refunds"][0]["status"] == "done"  # found in Payletter's list: done
    assert detail["status"] == "partially_cancelled" and detail["cancelled_amount"] == 2000
    assert [a["outcome"] for a in detail["audit"] if a["actor"] == "sweeper"][:1] == ["unknown"]


def test_log_level_is_case_insensitive() -> None:
    from tests.support import make_settings

    assert make_settings("sqlite+aiosqlite:///x.db", log_level="info").log_level == "INFO"
