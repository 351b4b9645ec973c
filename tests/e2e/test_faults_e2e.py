"""Faults between the processes: a database outage under redelivery, the address allowlist."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.processes import SHOP_TOKEN, Process, start_service
from tests.e2e.stack import Stack
from tests.factories import order_body
from tests.tcp_proxy import TcpProxy
from tests.test_outage import through

pytestmark = pytest.mark.e2e


async def wait_for(predicate_name: str, check: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate_name}")
        await asyncio.sleep(0.02)


async def test_three_failed_callbacks_then_the_fourth_is_applied(
    postgres_url: str, pg_engine: AsyncEngine, simulator_process: Process, log_dir: Path
) -> None:
    """The service's database is cut: it answers non-zero; Payletter redelivers; it applies."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    service = start_service(log_dir, database_url=through(proxy, postgres_url),
                            simulator_url=simulator_process.url, name="service-db-outage")
    try:
        async with (
            httpx.AsyncClient(base_url=service.url,
                              headers={"authorization": f"Bearer {SHOP_TOKEN}"}) as shop,
            httpx.AsyncClient(base_url=simulator_process.url) as sim,
        ):
            await sim.post("/_sim/reset")
            order = (await shop.post("/orders", json=order_body())).json()
            order_no = order["order_no"]
            await proxy.cut()
            await sim.post(f"/_sim/payments/{order['token']}/approve")

            async def three_failures() -> bool:
                attempts = (await sim.get("/_sim/callbacks",
                                          params={"order_no": order_no})).json()
                return len(attempts) >= 3

            await wait_for("three failed attempts", three_failures)
            await proxy.restore()

            async def acknowledged() -> bool:
                attempts = (await sim.get("/_sim/callbacks",
                                          params={"order_no": order_no})).json()
                return any(a["outcome"] == "acknowledged" for a in attempts)

            await wait_for("the acknowledged redelivery", acknowledged)
            attempts = (await sim.get("/_sim/callbacks", params={"order_no": order_no})).json()
            failed = [a for a in attempts if a["outcome"] != "acknowledged"]
            assert len(failed) >= 3
            assert all(a["response_status"] == 503 for a in failed)
            assert attempts[len(failed)]["outcome"] == "acknowledged"
            assert (await shop.get(f"/orders/{order_no}")).json()["status"] == "paid"
    finally:
        # Stop in a thread: the proxy lives on this event loop and must keep serving.
        await asyncio.to_thread(service.stop)
        await proxy.cut()
    async with pg_engine.connect() as conn:
        applied = (await conn.execute(text(
            "SELECT count(*) FROM order_transitions WHERE to_status = 'paid'"))).scalar()
    assert applied == 1


async def test_callbacks_are_accepted_only_from_the_allowed_source_address(
    stack: Stack, database_url: str, simulator_process: Process, log_dir: Path,
    engine: AsyncEngine,
) -> None:
    service = start_service(log_dir, database_url=database_url,
                            simulator_url=simulator_process.url, name="service-allowlist",
                            extra_env={"PAYLETTER_CALLBACK_IPS": "127.0.0.2"})
    try:
        async with httpx.AsyncClient(base_url=service.url,
                                     headers={"authorization": f"Bearer {SHOP_TOKEN}"}) as shop:
            refused = (await shop.post("/orders", json=order_body())).json()
            await stack.sim.post(f"/_sim/payments/{refused['token']}/approve")
            attempts = await stack.wait_attempts(refused["order_no"])
            assert attempts[0]["source_address"] in (None, "127.0.0.1")
            assert attempts[0]["response_status"] == 403
            refused_state = (await shop.get(f"/orders/{refused['order_no']}")).json()
            assert refused_state["status"] == "pending"
            assert refused_state["deliveries"] == []  # strangers are not stored

            await stack.sim.post("/_sim/faults", json={"callback_source_address": "127.0.0.2"})
            allowed = (await shop.post("/orders", json=order_body())).json()
            await stack.sim.post(f"/_sim/payments/{allowed['token']}/approve")
            await stack.wait_acknowledged(allowed["order_no"])
            stored = (await shop.get(f"/orders/{allowed['order_no']}")).json()
            assert stored["status"] == "paid"
            assert stored["deliveries"][0]["source_addr"] == "127.0.0.2"
    finally:
        service.stop()
