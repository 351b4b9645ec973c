"""Callbacks over real loopback sockets: the source address, timeouts, refused connections."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from tests.simulator.helpers import MakeSim, Receiver


class ServedReceiver:
    def __init__(self, receiver: Receiver, port: int) -> None:
        self.receiver = receiver
        self.url = f"http://127.0.0.1:{port}/payletter/callback"


@pytest.fixture
async def served() -> AsyncIterator[ServedReceiver]:
    """A Receiver behind uvicorn on 127.0.0.1 (proxy headers off: the peer is the socket's)."""
    receiver = Receiver()
    config = uvicorn.Config(
        receiver.app(), host="127.0.0.1", port=0, log_level="warning",
        proxy_headers=False, lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield ServedReceiver(receiver, port)
    server.should_exit = True
    await task


async def test_callbacks_leave_from_the_configured_source_address(
    make_sim: MakeSim, served: ServedReceiver
) -> None:
    sim = await make_sim(
        served.receiver, real_sockets=True, callback_source_address="127.0.0.2"
    )
    token, _ = await sim.paid(callback_url=served.url)
    [attempt] = await sim.wait_attempts(1)
    assert attempt["outcome"] == "acknowledged", attempt
    assert attempt["source_address"] == "127.0.0.2"
    assert served.receiver.peers == ["127.0.0.2"]
    assert (await sim.payment(token))["status_code"] == 5


async def test_source_address_fault_overrides_the_config(
    make_sim: MakeSim, served: ServedReceiver
) -> None:
    sim = await make_sim(served.receiver, real_sockets=True)
    await sim.faults(callback_source_address="127.0.0.3")
    await sim.paid(callback_url=served.url)
    await sim.wait_attempts(1)
    await sim.faults(callback_source_address=None)
    await sim.paid(callback_url=served.url, order_no="o2")
    await sim.wait_attempts(2)
    assert served.receiver.peers == ["127.0.0.3", "127.0.0.1"]


async def test_a_slow_receiver_is_a_timeout_and_is_retried(
    make_sim: MakeSim, served: ServedReceiver
) -> None:
    served.receiver.delay = 0.5
    sim = await make_sim(
        served.receiver, real_sockets=True, callback_timeout=0.1, callback_max_attempts=2,
        callback_interval=0.01,
    )
    await sim.paid(callback_url=served.url)
    attempts = await sim.wait_attempts(2)
    assert [a["outcome"] for a in attempts] == ["timeout", "timeout"]
    assert attempts[0]["response_status"] is None and "Timeout" in attempts[0]["error"]


async def test_a_refused_connection_is_an_error_and_is_retried(make_sim: MakeSim) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = await make_sim(real_sockets=True, callback_max_attempts=2, callback_interval=0.01)
    await sim.paid(callback_url=f"http://127.0.0.1:{port}/callback")
    attempts = await sim.wait_attempts(2)
    assert [a["outcome"] for a in attempts] == ["error", "error"]
    assert "Connect" in attempts[0]["error"]
