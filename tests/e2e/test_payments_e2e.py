"""Order → payment window → approve → return and callback, through real processes."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.stack import Stack
from tests.support import scalar

pytestmark = pytest.mark.e2e


async def paid_applications(engine: AsyncEngine, order_no: str) -> int:
    return int(await scalar(
        engine,
        "SELECT count(*) FROM order_transitions t JOIN orders o ON o.id = t.order_id "
        "WHERE o.order_no = :no AND t.to_status = 'paid'", no=order_no))


@pytest.mark.parametrize(("pgcode", "amount"),
                         [("creditcard", 15000), ("mobile", 5000), ("kakaopay", 3000)])
async def test_a_payment_is_applied_once_with_return_and_callback_recorded(
    stack: Stack, engine: AsyncEngine, pgcode: str, amount: int
) -> None:
    order = await stack.create_order(pgcode=pgcode, amount=amount)
    result = await stack.window_action(order["token"], "approve")
    redirect = await stack.browser_return(result)
    assert redirect["order_no"] == order["order_no"]
    assert redirect["status"] == "paid"
    await stack.wait_acknowledged(order["order_no"])

    stored = await stack.order(order["order_no"])
    assert stored["status"] == "paid"
    assert stored["tid"] == result["return_fields"]["tid"]
    assert {d["kind"] for d in stored["deliveries"]} == {"return", "callback"}
    assert sorted(d["outcome"] for d in stored["deliveries"]) == ["applied", "duplicate"]
    assert await paid_applications(engine, order["order_no"]) == 1


async def test_a_virtual_account_is_issued_then_paid_on_deposit(
    stack: Stack, engine: AsyncEngine
) -> None:
    order = await stack.create_order(pgcode="virtualaccount", amount=25000)
    result = await stack.window_action(order["token"], "approve")
    assert "payhash" not in result["return_fields"] or not result["return_fields"]["payhash"]
    redirect = await stack.browser_return(result)
    assert redirect["status"] == "awaiting_deposit"
    issued = await stack.order(order["order_no"])
    assert issued["payment_details"]["virtual_account"]["account_no"]
    assert await stack.callbacks(order["order_no"]) == []  # no money yet, no callback

    tid = result["return_fields"]["tid"]
    assert (await stack.sim.post(f"/_sim/virtualaccount/{tid}/deposit")).status_code == 200
    await stack.wait_acknowledged(order["order_no"])
    paid = await stack.order(order["order_no"])
    assert paid["status"] == "paid"
    assert {d["kind"] for d in paid["deliveries"]} == {"return", "callback"}
    assert await paid_applications(engine, order["order_no"]) == 1


async def test_ten_concurrent_duplicate_callbacks_apply_once(
    stack: Stack, engine: AsyncEngine
) -> None:
    order = await stack.create_order()
    result = await stack.window_action(order["token"], "approve")
    await stack.wait_acknowledged(order["order_no"])
    r = await stack.sim.post(f"/_sim/callbacks/{order['token']}/send",
                             json={"copies": 10, "concurrent": True})
    assert r.status_code == 200
    first = r.json()["first_attempts"]
    assert len(first) == 10
    assert all(a["outcome"] == "acknowledged" for a in first)
    assert await paid_applications(engine, order["order_no"]) == 1
    await stack.browser_return(result)  # the browser's return comes last: still once
    assert await paid_applications(engine, order["order_no"]) == 1
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 12


async def test_a_declined_payment_fails_the_order_and_redirects_the_buyer(
    stack: Stack,
) -> None:
    order = await stack.create_order()
    result = await stack.window_action(order["token"], "decline")
    redirect = await stack.browser_return(result)
    assert redirect == {"order_no": order["order_no"], "status": "failed", "outcome": "applied"}
    await asyncio.sleep(0.5)  # a decline sends no callback
    assert await stack.callbacks(order["order_no"]) == []
    assert (await stack.order(order["order_no"]))["status"] == "failed"


async def test_a_buyer_cancel_abandons_the_order_and_redirects_the_buyer(stack: Stack) -> None:
    order = await stack.create_order()
    cancel = await stack.window_action(order["token"], "cancel")
    r = await stack.browser.get(cancel["cancel_url"])
    assert r.status_code == 303
    from tests.e2e.stack import redirect_query

    assert redirect_query(r) == {"order_no": order["order_no"], "status": "abandoned",
                                 "outcome": "applied"}
    assert (await stack.order(order["order_no"]))["status"] == "abandoned"
