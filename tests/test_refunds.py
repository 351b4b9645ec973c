"""Cancels and partial cancels against the simulator: rules first, never twice, audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.sim_harness import LoseAnswers, SimGateway, sim_gateway
from tests.support import scalar


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url) as gateway:
        yield gateway


async def paid_order(gw: SimGateway, **overrides: Any) -> dict[str, Any]:
    order = await gw.create_order(**overrides)
    await gw.pay(order)
    assert (await gw.order(order["order_no"]))["status"] == "paid"
    return order


async def sim_cancels(gw: SimGateway, order: dict[str, Any]) -> list[dict[str, Any]]:
    payment = (await gw.sim.get(f"/_sim/payments/{order['token']}")).json()
    cancels: list[dict[str, Any]] = payment["cancels"]
    return cancels


async def cancel(gw: SimGateway, order: dict[str, Any], body: dict[str, Any] | None = None,
                 key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await gw.ops.post(f"/orders/{order['order_no']}/cancel", json=body or {},
                             headers=headers)


async def test_partial_cancels_up_to_the_full_amount_then_one_more_is_refused(
    gw: SimGateway,
) -> None:
    order = await paid_order(gw, amount=10000)
    first = await cancel(gw, order, {"amount": 3000})
    assert first.status_code == 200, first.text
    assert first.json()["refund"]["status"] == "done" and first.json()["refund"]["cid"]
    assert first.json()["order"]["status"] == "partially_cancelled"
    assert first.json()["order"]["cancelled_amount"] == 3000
    second = await cancel(gw, order, {"amount": 7000})
    assert second.json()["order"]["status"] == "cancelled"
    assert second.json()["order"]["cancelled_amount"] == 10000
    assert len(await sim_cancels(gw, order)) == 2

    one_more = await cancel(gw, order, {"amount": 1})
    assert one_more.status_code == 409
    assert "cancelled" in one_more.json()["error"]["message"]
    assert len(await sim_cancels(gw, order)) == 2  # nothing sent to the PG

    detail = await gw.order(order["order_no"])
    assert [r["amount"] for r in detail["refunds"]] == [3000, 7000]
    assert [(a["action"], a["outcome"]) for a in detail["audit"]] == [
        ("partial_cancel", "done"), ("partial_cancel", "done")]


async def test_more_than_the_remaining_amount_is_refused_before_payletter(gw: SimGateway) -> None:
    order = await paid_order(gw, amount=5000)
    r = await cancel(gw, order, {"amount": 5001})
    assert r.status_code == 422
    assert "remaining 5000" in r.json()["error"]["message"]
    assert await sim_cancels(gw, order) == []


async def test_a_full_cancel_refunds_everything(gw: SimGateway) -> None:
    order = await paid_order(gw, amount=5000)
    r = await cancel(gw, order)
    assert r.status_code == 200
    assert r.json()["refund"]["kind"] == "full"
    assert r.json()["order"]["status"] == "cancelled"
    [sim_cancel] = await sim_cancels(gw, order)
    assert sim_cancel["kind"] == "full" and sim_cancel["amount"] == 5000


@pytest.mark.parametrize(
    ("pgcode", "amount", "body", "rule"),
    [
        ("virtualaccount", 5000, {}, "not cancellable"),
        ("checkpay", 5000, {"amount": 1000}, "partial cancel not allowed"),
    ],
)
async def test_cancels_the_method_forbids_are_refused_naming_the_rule(
    gw: SimGateway, pgcode: str, amount: int, body: dict[str, Any], rule: str
) -> None:
    order = await gw.create_order(pgcode=pgcode, amount=amount)
    result = await gw.pay(order)
    if pgcode == "virtualaccount":
        tid = result["return_fields"]["tid"]
        await gw.sim.post(f"/_sim/virtualaccount/{tid}/deposit")
        for _ in range(100):
            if (await gw.order(order["order_no"]))["status"] == "paid":
                break
            await asyncio.sleep(0.01)
    r = await cancel(gw, order, body)
    assert r.status_code == 422, r.text
    assert rule in r.json()["error"]["message"]
    assert pgcode in r.json()["error"]["message"]
    assert await sim_cancels(gw, order) == []


async def test_a_cancel_past_the_window_is_refused_naming_the_window(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    order = await paid_order(gw, pgcode="banktransfer", amount=5000)
    async with engine.begin() as conn:  # paid yesterday (Korea time): same-day window closed
        await conn.execute(text("UPDATE orders SET transaction_date = :t"),
                           {"t": datetime.now(UTC) - timedelta(days=1, hours=1)})
    r = await cancel(gw, order, {"amount": 1000})
    assert r.status_code == 422
    assert "the day of payment" in r.json()["error"]["message"]
    assert await sim_cancels(gw, order) == []


async def test_two_concurrent_identical_cancels_make_one_refund(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    order = await paid_order(gw, amount=8000)
    answers = await asyncio.gather(cancel(gw, order, {"amount": 2000}, key="refund-1"),
                                   cancel(gw, order, {"amount": 2000}, key="refund-1"))
    assert sorted(a.status_code for a in answers) in ([200, 200], [200, 202])
    assert len(await sim_cancels(gw, order)) == 1
    assert await scalar(engine, "SELECT count(*) FROM refunds") == 1
    again = await cancel(gw, order, {"amount": 2000}, key="refund-1")
    assert again.status_code == 200 and again.json()["refund"]["status"] == "done"
    assert len(await sim_cancels(gw, order)) == 1


async def test_two_concurrent_cancels_without_a_key_still_refund_once(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    order = await paid_order(gw, amount=8000)
    answers = await asyncio.gather(cancel(gw, order), cancel(gw, order))
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert len(await sim_cancels(gw, order)) == 1
    assert await scalar(engine, "SELECT count(*) FROM refunds") == 1


async def test_a_lost_cancel_answer_leaves_the_refund_unknown_and_sync_settles_it(
    database_url: str, engine: AsyncEngine
) -> None:
    lose = LoseAnswers(httpx.AsyncHTTPTransport())
    async with sim_gateway(database_url, lose=lose) as gw:
        order = await paid_order(gw, amount=9000)
        lose.lose("v1.0/payments/cancel/partial")  # Payletter cancels; we never hear
        r = await cancel(gw, order, {"amount": 4000})
        assert r.status_code == 504
        assert r.json()["refund"]["status"] == "unknown"
        assert r.json()["order"]["status"] == "paid"
        # Not sent again, whatever the operator clicks:
        retry = await cancel(gw, order, {"amount": 4000})
        assert retry.status_code == 409 and "unknown" in retry.json()["error"]["message"]
        assert len(await sim_cancels(gw, order)) == 1

        synced = await gw.ops.post(f"/orders/{order['order_no']}/sync")
        assert synced.status_code == 200, synced.text
        assert synced.json()["actions"] == ["refund_done"]
        detail = await gw.order(order["order_no"])
        assert detail["status"] == "partially_cancelled"
        assert detail["cancelled_amount"] == 4000
        assert detail["refunds"][0]["status"] == "done" and detail["refunds"][0]["cid"]
        assert len(await sim_cancels(gw, order)) == 1


async def test_an_unknown_refund_that_never_happened_is_failed_after_the_grace_time(
    database_url: str, engine: AsyncEngine
) -> None:
    lose = LoseAnswers(httpx.AsyncHTTPTransport())
    async with sim_gateway(database_url, lose=lose, refund_unknown_fail_after_seconds=0.01
                           ) as gw:
        order = await paid_order(gw, amount=9000)
        lose.lose("v1.0/payments/cancel", reaches_payletter=False)
        assert (await cancel(gw, order)).json()["refund"]["status"] == "unknown"
        await asyncio.sleep(0.05)
        synced = await gw.ops.post(f"/orders/{order['order_no']}/sync")
        assert synced.json()["actions"] == ["refund_failed"]
        detail = await gw.order(order["order_no"])
        assert detail["status"] == "paid" and detail["cancelled_amount"] == 0
        assert detail["refunds"][0]["status"] == "failed"
        # Settled: a new cancel may go now, and it works.
        lose.paths.clear()
        assert (await cancel(gw, order)).status_code == 200


async def test_a_refusal_by_payletter_fails_the_refund_and_changes_nothing(
    gw: SimGateway,
) -> None:
    order = await paid_order(gw, amount=6000)
    await gw.sim.post("/_sim/faults", json={"api_errors": {"payments/cancel/partial": {
        "status": 406, "code": 3002, "message": "partial cancel not in your contract"}}})
    r = await cancel(gw, order, {"amount": 1000})
    assert r.status_code == 422
    assert "partial cancel not in your contract" in r.json()["message"]
    detail = await gw.order(order["order_no"])
    assert detail["status"] == "paid" and detail["refunds"][0]["status"] == "failed"
    assert detail["audit"][-1]["outcome"] == "refused"


async def test_cancelling_needs_the_ops_token(gw: SimGateway) -> None:
    order = await paid_order(gw)
    r = await gw.shop.post(f"/orders/{order['order_no']}/cancel", json={})
    assert r.status_code == 403
    assert (await gw.ops.post("/orders/nope/cancel", json={})).status_code == 404
    bad = await gw.ops.post(f"/orders/{order['order_no']}/cancel", json={"amount": "all"})
    assert bad.status_code == 422
