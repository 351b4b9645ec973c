"""The stack end-to-end tests drive: the service and the simulator as real processes, with
the clients a shop, the simulator's control API and a browser would use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.postgres import run_migrations
from harness.processes import SHOP_TOKEN, Process, start_service
from tests.factories import result_query

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Stack:
    service: Process
    simulator: Process
    shop: httpx.AsyncClient
    sim: httpx.AsyncClient
    browser: httpx.AsyncClient

    async def create_order(self, **overrides: Any) -> dict[str, Any]:
        from tests.factories import order_body

        r = await self.shop.post("/orders", json=order_body(**overrides))
        assert r.status_code == 201, r.text
        order: dict[str, Any] = r.json()
        return order

    async def order(self, order_no: str) -> dict[str, Any]:
        r = await self.shop.get(f"/orders/{order_no}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def window_action(self, token: str, action: str) -> dict[str, Any]:
        r = await self.sim.post(f"/_sim/payments/{token}/{action}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def browser_return(self, result: dict[str, Any]) -> dict[str, str]:
        """POST the window's result to return_url as the browser does; the redirect's query."""
        r = await self.browser.post(result["return_url"], data=result["return_fields"])
        assert r.status_code == 303, r.text
        return redirect_query(r)

    async def callbacks(self, order_no: str) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = (
            await self.sim.get("/_sim/callbacks", params={"order_no": order_no})).json()
        return attempts

    async def wait_attempts(self, order_no: str, timeout: float = 15.0
                            ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not (attempts := await self.callbacks(order_no)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no callback attempt for {order_no}")
            await asyncio.sleep(0.05)
        return attempts

    async def wait_acknowledged(self, order_no: str, count: int = 1,
                                timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            attempts = await self.callbacks(order_no)
            if sum(a["outcome"] == "acknowledged" for a in attempts) >= count:
                return attempts
            if time.monotonic() > deadline:
                raise AssertionError(f"callbacks not acknowledged: {attempts}")
            await asyncio.sleep(0.05)


def redirect_query(response: httpx.Response) -> dict[str, str]:
    return result_query(response.headers["location"])


@asynccontextmanager
async def clients_for(service: Process, simulator: Process) -> AsyncIterator[Stack]:
    """The shop (with its token), the simulator's control API and a browser, over `service`."""
    async with (
        httpx.AsyncClient(base_url=service.url,
                          headers={"authorization": f"Bearer {SHOP_TOKEN}"}) as shop,
        httpx.AsyncClient(base_url=simulator.url) as sim,
        httpx.AsyncClient() as browser,
    ):
        yield Stack(service, simulator, shop, sim, browser)


@asynccontextmanager
async def sqlite_stack(simulator: Process, log_dir: Path, database: Path, name: str
                       ) -> AsyncIterator[Stack]:
    """A service of its own as `make run` starts it: PAYLETTER_ENV=sim, a fresh SQLite file."""
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(run_migrations, url)  # alembic runs its own event loop
    service = start_service(log_dir, database_url=url, simulator_url=simulator.url, name=name)
    try:
        async with clients_for(service, simulator) as stack:
            yield stack
    finally:
        service.stop()


