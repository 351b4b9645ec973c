"""The service and the real simulator wired together in one process, over ASGI transports.

Payletter calls go to the simulator app; its callbacks come back to the service app from
127.0.0.1. No sockets, both lifespans running: fast, and the real protocol on both sides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.main import create_app
from simulator.app import create_app as create_simulator
from simulator.config import SimConfig
from tests.support import client_for, make_settings, running

SIM_BASE = "http://sim.localhost"


class _Later:
    """An ASGI app to be named after it is needed (the two apps refer to each other)."""

    app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class SimGateway:
    service: FastAPI
    simulator: FastAPI
    shop: httpx.AsyncClient
    ops: httpx.AsyncClient
    sim: httpx.AsyncClient
    browser: httpx.AsyncClient

    async def create_order(self, **overrides: Any) -> dict[str, Any]:
        from tests.factories import order_body

        r = await self.shop.post("/orders", json=order_body(**overrides))
        assert r.status_code == 201, r.text
        order: dict[str, Any] = r.json()
        return order

    async def pay(self, order: dict[str, Any], *, with_return: bool = True) -> dict[str, Any]:
        """Approve in the simulator's window; post the browser's return; wait for the callback."""
        r = await self.sim.post(f"/_sim/payments/{order['token']}/approve")
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        if with_return:
            back = await self.browser.post(result["return_url"], data=result["return_fields"])
            assert back.status_code == 303, back.text
        return result

    async def order(self, order_no: str) -> dict[str, Any]:
        r = await self.ops.get(f"/orders/{order_no}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


class LoseAnswers(httpx.AsyncBaseTransport):
    """Payletter got the request (or not) but its answer never came back: a timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: dict[str, bool] = {}  # path -> whether the request reaches Payletter

    def lose(self, path: str, *, reaches_payletter: bool = True) -> None:
        self.paths[path] = reaches_payletter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/")
        if path not in self.paths:
            return await self.inner.handle_async_request(request)
        if self.paths[path]:
            await self.inner.handle_async_request(request)
        raise httpx.ReadTimeout("answer lost", request=request)


@asynccontextmanager
async def sim_gateway(database_url: str, *, sim_config: SimConfig | None = None,
                      lose: LoseAnswers | None = None, **settings: Any
                      ) -> AsyncIterator[SimGateway]:
    later = _Later()
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=later)
    if lose is not None:
        lose.inner = transport
        transport = lose
    service = create_app(
        make_settings(database_url, payletter_callback_ips="127.0.0.1",
                      payletter_base_url=f"{SIM_BASE}/", **settings),
        payletter_transport=transport,
    )
    simulator = create_simulator(
        sim_config or SimConfig(public_url=SIM_BASE, callback_interval=0.05),
        callback_transport=httpx.ASGITransport(app=service, client=("127.0.0.1", 40001)),
    )
    later.app = simulator
    async with (
        running(service),
        running(simulator),
        client_for(service, authorization="Bearer shop-token-for-tests") as shop,
        client_for(service, authorization="Bearer ops-token-for-tests") as ops,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator),
                          base_url=SIM_BASE) as sim,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=service, client=("203.0.113.9", 1)),
                          base_url="http://gateway.localhost") as browser,
    ):
        yield SimGateway(service, simulator, shop, ops, sim, browser)
