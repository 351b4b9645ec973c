"""One timeline of an order (app.orders.history): the ops page and `orders show` list the same
entries, in the same order."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.sim_harness import SimGateway, sim_gateway
from tests.support import client_for
from tests.test_cli import invoke, ok
from tests.test_ops_page import sign_in


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url) as gateway:
        # approve answers once the callback's first attempt is over: no stragglers.
        await gateway.sim.post("/_sim/faults", json={"callback_before_return": True})
        yield gateway


def page_entries(page: str) -> list[tuple[str, str]]:
    """(time, kind) of every timeline row on the ops page."""
    return [(at.removesuffix(" KST"), kind) for kind, at in re.findall(
        r"<tr class='timeline-(\w+)' data-id='\d+' data-at='[^']+'><td class='time'>([^<]+)<",
        page)]


def cli_entries(output: str) -> list[tuple[str, str]]:
    """(time, kind) of every timeline line `orders show` prints."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Timeline (KST)"))
    assert lines[start + 1].split() == ["TIME", "WHAT", "DETAIL"]
    return [(f"{day} {time}", kind) for day, time, kind, *_ in
            (line.split() for line in lines[start + 2:])]


async def test_the_ops_page_and_orders_show_list_the_same_timeline_entries(
    gw: SimGateway,
) -> None:
    order = await gw.create_order(amount=10000)
    await gw.pay(order)
    no = order["order_no"]
    refund = await gw.ops.post(f"/orders/{no}/cancel", json={"amount": 2500})
    assert refund.status_code == 200, refund.text

    async with client_for(gw.service) as browser:
        await sign_in(browser)
        page = await browser.get(f"/ops/orders/{no}")
    assert page.status_code == 200
    shown = ok(await invoke(gw, "orders", "show", no)).stdout

    on_page, in_cli = page_entries(page.text), cli_entries(shown)
    assert on_page == in_cli
    kinds = [kind for _, kind in in_cli]
    assert kinds[0] == "created"
    assert {"delivery", "state", "refund", "audit", "event"} <= set(kinds)
    assert kinds.count("event") == 2  # order.paid, order.partially_cancelled
    assert "order.paid" in shown and "order.paid" in page.text
