from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from simulator.app import create_app
from simulator.config import SimConfig
from tests.simulator.helpers import MakeSim, Receiver, Sim


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """Build simulators on ASGI transports; callbacks go to an in-process Receiver."""
    async with AsyncExitStack() as stack:

        async def make(
            receiver: Receiver | None = None, *, real_sockets: bool = False, **config: Any
        ) -> Sim:
            """real_sockets: callbacks go over the network (no injected transport)."""
            config.setdefault("public_url", "http://sim.test")
            config.setdefault("callback_interval", 0.02)
            config.setdefault("callback_max_attempts", 3)
            receiver = receiver or Receiver()
            transport = None if real_sockets else receiver.transport()
            app = create_app(SimConfig(**config), callback_transport=transport)
            # ASGITransport sends no lifespan events: run the lifespan ourselves.
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://sim.test/"
            )
            await stack.enter_async_context(client)
            return Sim(client, receiver)

        yield make


@pytest.fixture
async def sim(make_sim: MakeSim) -> Sim:
    return await make_sim()
