"""The outbox: an event is written with its state change, and delivered from there."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_sessionmaker
from app.main import create_app
from app.orders.repository import OrderRepository
from app.orders.states import OrderEvent
from app.orders.transitions import transition
from app.webhooks.dispatcher import DispatchConfig, Dispatcher
from app.webhooks.signing import verify
from tests.factories import callback_body, create_order
from tests.fake_payletter import FakePayletter
from tests.support import (
    PAYLETTER_IP,
    client_for,
    fail_next_commit,
    make_settings,
    running,
    scalar,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOOK_URL = "http://shop.test/hooks/payletter"


@dataclass
class Receiver:
    """The shop's webhook endpoint: verifies, records, fails while `down`."""

    down_for: int = 0  # answer 503 to this many requests first
    received: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.down_for:
            return httpx.Response(503)
        verify(SECRET, dict(request.headers), request.content)
        body = json.loads(request.content)
        assert body["id"] == request.headers["webhook-id"]
        self.received.append(body)
        return httpx.Response(204)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


async def events(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(
            "SELECT order_no, type, status FROM outbox_events ORDER BY id"))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def dispatcher(engine: AsyncEngine, receiver: Receiver, **overrides: Any) -> Dispatcher:
    config = DispatchConfig(**{"url": HOOK_URL, "secret": SECRET, "max_attempts": 3,
                               "retry_base_seconds": 0.0001, "poll_seconds": 0.01,
                               **overrides})
    return Dispatcher(create_sessionmaker(engine), httpx.AsyncClient(
        transport=receiver.transport), config, jitter=lambda: 1.0)


async def test_each_state_change_writes_its_event_with_the_order_as_stored(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    assert await events(engine) == []  # created → pending tells the shop nothing new
    body = callback_body(order)
    await payletter_peer.post("/payletter/callback", json=body)
    await payletter_peer.post("/payletter/callback", json=body)  # duplicate: no event
    assert await events(engine) == [(order["order_no"], "order.paid", "pending")]
    stored = await scalar(engine, "SELECT payload FROM outbox_events")
    payload = json.loads(stored) if isinstance(stored, str) else stored
    assert payload["type"] == "order.paid"
    assert payload["data"]["status"] == "paid"
    assert payload["data"]["tid"] == body["tid"]
    assert payload["id"].startswith("evt_")


async def test_a_result_held_for_review_raises_order_needs_review(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    review = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(review, amount=1))
    assert [t for _, t, _ in await events(engine)] == ["order.needs_review"]


async def test_a_state_change_and_its_event_roll_back_together(
    shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    async with create_sessionmaker(engine)() as session:
        locked = await OrderRepository(session).lock_by_order_no(order["order_no"])
        assert locked is not None
        await transition(session, locked, OrderEvent.BUYER_CANCELLED, reason="test")
        assert await session.scalar(text("SELECT count(*) FROM outbox_events")) == 1
        await session.rollback()
    assert await events(engine) == []
    assert await scalar(engine, "SELECT status FROM orders") == "pending"


async def test_a_failed_commit_leaves_neither_the_payment_nor_its_event(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = await create_order(shop)
    fail_next_commit(monkeypatch, engine)
    r = await payletter_peer.post("/payletter/callback", json=callback_body(order))
    assert r.json()["code"] != 0
    assert await events(engine) == []
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(order))
            ).json()["code"] == 0
    assert [t for _, t, _ in await events(engine)] == ["order.paid"]


async def test_events_are_delivered_signed_and_marked(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(order))
    receiver = Receiver()
    assert await dispatcher(engine, receiver).run_once() == 1
    [event] = receiver.received
    assert event["type"] == "order.paid" and event["data"]["order_no"] == order["order_no"]
    assert await events(engine) == [(order["order_no"], "order.paid", "delivered")]
    assert await dispatcher(engine, receiver).run_once() == 0  # nothing left


async def test_a_failing_endpoint_is_retried_with_backoff_then_the_event_is_dead(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
    ops: httpx.AsyncClient,
) -> None:
    order = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(order))
    receiver = Receiver(down_for=100)
    worker = dispatcher(engine, receiver, max_attempts=3, retry_base_seconds=60)
    assert worker.retry_delay(1).total_seconds() == 60
    assert worker.retry_delay(3).total_seconds() == 240
    assert dispatcher(engine, receiver, retry_cap_seconds=100).retry_delay(30).total_seconds(
    ) == 100
    fast = dispatcher(engine, receiver, max_attempts=3)
    for _ in range(3):
        assert await fast.run_once() == 1
        await _wait_past_backoff()
    assert await fast.run_once() == 0
    assert await events(engine) == [(order["order_no"], "order.paid", "dead")]
    listed = (await ops.get("/webhooks/events", params={"status": "dead"})).json()
    assert listed[0]["attempts"] == 3 and listed[0]["last_status"] == 503

    receiver.down_for = 0
    replayed = await ops.post("/webhooks/events/replay-dead")
    assert replayed.json() == {"replayed": 1}
    assert await fast.run_once() == 1
    assert await events(engine) == [(order["order_no"], "order.paid", "delivered")]
    # One event replayed by id: sent again with the same webhook-id.
    event_id = receiver.received[0]["id"]
    assert (await ops.post(f"/webhooks/events/{event_id}/replay")).json() == {"replayed": 1}
    assert await fast.run_once() == 1
    assert [e["id"] for e in receiver.received] == [event_id, event_id]
    assert (await ops.post("/webhooks/events/evt_nope/replay")).status_code == 404


async def _wait_past_backoff() -> None:
    await asyncio.sleep(0.01)


async def test_after_an_outage_events_arrive_and_each_order_s_events_in_order(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, browser: httpx.AsyncClient,
    engine: AsyncEngine, fake_payletter: FakePayletter,
) -> None:
    from tests.factories import path_of, sent_request

    orders = [await create_order(shop) for _ in range(4)]
    for order in orders:  # each order: failed (declined), then paid: two events in order
        return_url = path_of(sent_request(fake_payletter, order["order_no"])["return_url"])
        await browser.post(return_url, data={"code": "1001", "message": "declined",
                                             "order_no": order["order_no"]})
        await payletter_peer.post("/payletter/callback", json=callback_body(order))
    receiver = Receiver(down_for=6)
    worker = dispatcher(engine, receiver, max_attempts=20)
    for _ in range(40):
        if all(status == "delivered" for *_, status in await events(engine)):
            break
        await worker.run_once()
        await _wait_past_backoff()
    per_order: dict[str, list[str]] = {}
    for event in receiver.received:
        per_order.setdefault(event["data"]["order_no"], []).append(event["type"])
    assert per_order == {o["order_no"]: ["order.failed", "order.paid"] for o in orders}


async def test_the_service_runs_the_dispatcher_itself(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    receiver = Receiver()
    settings = make_settings(database_url, shop_webhook_url=HOOK_URL,
                             shop_webhook_secret=SECRET, webhook_poll_seconds=0.01)
    app: FastAPI = create_app(settings, fake_payletter.transport, receiver.transport)
    async with running(app):
        async with client_for(app, authorization="Bearer shop-token-for-tests") as shop:
            order = await create_order(shop)
        async with client_for(app, peer=PAYLETTER_IP) as payletter:
            await payletter.post("/payletter/callback", json=callback_body(order))
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.01)
    assert [e["type"] for e in receiver.received] == ["order.paid"]


async def test_metrics_count_pending_events_their_age_and_delivery_outcomes(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    from app.metrics import WEBHOOK_DELIVERIES, WEBHOOK_OLDEST_PENDING, WEBHOOK_PENDING

    order = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(order))
    receiver = Receiver(down_for=1)
    worker = dispatcher(engine, receiver, max_attempts=5)
    await worker.update_stats()
    assert WEBHOOK_PENDING._value.get() == 1
    assert WEBHOOK_OLDEST_PENDING._value.get() >= 0
    failed = WEBHOOK_DELIVERIES.labels(outcome="failed")._value.get()
    delivered = WEBHOOK_DELIVERIES.labels(outcome="delivered")._value.get()
    await worker.run_once()
    await _wait_past_backoff()
    await worker.run_once()
    assert WEBHOOK_DELIVERIES.labels(outcome="failed")._value.get() == failed + 1
    assert WEBHOOK_DELIVERIES.labels(outcome="delivered")._value.get() == delivered + 1
    await worker.update_stats()
    assert WEBHOOK_PENDING._value.get() == 0
    metrics = (await shop.get("/metrics")).text
    assert "gateway_webhook_events_pending 0.0" in metrics
