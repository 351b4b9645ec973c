"""The signed callback's one-statement path on PostgreSQL (`receive_signed_callback`).

It must write exactly what the general path writes, answer redeliveries without taking a
lock, hand every other case to the general path with nothing written, and never
acknowledge what it did not commit. On SQLite it is never taken.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_sessionmaker
from app.main import create_app
from app.models import Delivery, Order, OrderTransition, OutboxEvent
from app.orders.schemas import OrderOut
from app.payments import endpoints
from app.payments.service import Inbound, Outcome
from app.settings import PUBLIC_TEST_MERCHANT
from tests.factories import callback_body, create_order
from tests.fake_payletter import FakePayletter
from tests.payletter_vectors import payhash
from tests.support import PAYLETTER_IP, client_for, make_settings, running, scalar
from tests.test_billing import AUTO_TEST

ACK = {"code": 0, "message": ""}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


class FastPath:
    """What the fast path answered for each callback: an outcome, or None (handed on)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, enabled: bool = True) -> None:
        self.answers: list[str | None] = []
        self.enabled = enabled
        real = endpoints.receive_signed_callback

        async def spy(gateway: Any, inbound: Inbound) -> Outcome | None:
            outcome = await real(gateway, inbound) if self.enabled else None
            self.answers.append(outcome.outcome if outcome else None)
            return outcome

        monkeypatch.setattr(endpoints, "receive_signed_callback", spy)


@pytest.fixture
def fast_path(monkeypatch: pytest.MonkeyPatch) -> FastPath:
    return FastPath(monkeypatch)


def on_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def taken(engine: AsyncEngine, *answers: str | None) -> list[str | None]:
    """What the fast path answers on PostgreSQL; on SQLite it is never asked."""
    return list(answers) if on_postgres(engine) else []


async def stored(engine: AsyncEngine, order_no: str) -> dict[str, Any]:
    """The order as stored, its transitions, events and deliveries, as plain values."""
    async with create_sessionmaker(engine)() as session:
        order = await session.scalar(select(Order).where(Order.order_no == order_no))
        assert order is not None
        moves = (await session.scalars(select(OrderTransition)
                                       .where(OrderTransition.order_id == order.id))).all()
        events = (await session.scalars(select(OutboxEvent)
                                        .where(OutboxEvent.order_id == order.id))).all()
        seen = (await session.scalars(select(Delivery).where(Delivery.order_no == order_no)
                                      .order_by(Delivery.id))).all()
        return {
            "order": OrderOut.model_validate(order).model_dump(mode="json"),
            "transitions": [(t.from_status, t.to_status, t.event, t.reason, t.delivery_id)
                            for t in moves if t.event != "window_issued"],
            "events": [(e.event_id, e.type, e.status, e.attempts, e.payload) for e in events],
            "deliveries": [(d.id, d.order_id == order.id, d.verification, d.outcome, d.detail,
                            d.response_code, d.raw_body) for d in seen],
        }


def _without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


async def test_a_signed_callback_writes_what_the_general_path_writes(
    gateway_app: FastAPI, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    engine: AsyncEngine, fast_path: FastPath,
) -> None:
    """Two orders alike; one paid by the fast path, one by the general path: the same
    order, transition, event and delivery, and the event's `data` is the order exactly as
    OrderOut writes it (times to the microsecond, "Z", payment_details merged)."""
    fast, general = await create_order(shop), await create_order(shop)
    r = await payletter_peer.post("/payletter/callback", json=callback_body(fast))
    assert r.json() == ACK
    fast_path.enabled = False
    r = await payletter_peer.post("/payletter/callback", json=callback_body(general))
    assert r.json() == ACK
    assert fast_path.answers == taken(engine, "applied", None)

    a, b = await stored(engine, fast["order_no"]), await stored(engine, general["order_no"])
    differ = ("order_no", "tid", "token", "online_url", "mobile_url", "created_at",
              "updated_at", "paid_at")
    assert a["order"]["status"] == "paid"
    assert _without(a["order"], *differ) == _without(b["order"], *differ)
    assert a["order"]["payment_details"]["cash_receipt"]["code"]  # the merge happened

    [(from_status, to_status, event, reason, delivery_id)] = a["transitions"]
    assert (from_status, to_status, event) == ("pending", "paid", "approved")
    assert reason == f"payhash_ok tid={a['order']['tid']}"
    assert [t[:3] for t in b["transitions"]] == [("pending", "paid", "approved")]
    [delivery] = a["deliveries"]
    assert delivery[0] == delivery_id
    assert delivery[1:6] == b["deliveries"][0][1:6] == (True, "payhash_ok", "applied", None, 0)
    assert json.loads(delivery[6])["order_no"] == fast["order_no"]

    [(event_id, event_type, status, attempts, payload)] = a["events"]
    assert (event_type, status, attempts) == ("order.paid", "pending", 0)
    assert payload["id"] == event_id and payload["type"] == "order.paid"
    assert ISO_UTC.match(payload["timestamp"])
    assert payload["data"] == a["order"]  # exactly what the service's own event carries
    assert payload.keys() == b["events"][0][4].keys()
    # Both forms of a time: transaction_date has no microseconds, paid_at has.
    assert payload["data"]["transaction_date"] == "2018-08-16T06:03:52Z"
    assert ISO_UTC.match(payload["data"]["paid_at"])


async def test_a_redelivery_is_answered_without_waiting_for_the_order_lock(
    gateway_app: FastAPI, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    engine: AsyncEngine, fast_path: FastPath,
) -> None:
    """An applied tid again: one read and the delivery's insert, no row lock, so a long
    transaction holding the order (a refund, an operator) doesn't hold up Payletter."""
    order = await create_order(shop)
    body = callback_body(order)
    assert (await payletter_peer.post("/payletter/callback", json=body)).json() == ACK
    if not on_postgres(engine):  # SQLite: one writer at a time; nothing to show here
        assert fast_path.answers == []
        return
    async with engine.connect() as holder:
        await holder.execute(text("SELECT 1 FROM orders WHERE order_no = :no FOR NO KEY UPDATE"),
                             {"no": order["order_no"]})
        again = await asyncio.wait_for(
            payletter_peer.post("/payletter/callback", json=body), timeout=5)
        await holder.rollback()
    assert again.json() == ACK
    assert fast_path.answers == ["applied", "duplicate"]
    deliveries = (await stored(engine, order["order_no"]))["deliveries"]
    assert [d[3:5] for d in deliveries] == [("applied", None), ("duplicate", "already applied")]
    assert all(d[1] for d in deliveries)  # both linked to the order


def _holds_tid(order: dict[str, Any]) -> dict[str, Any]:
    return {"tid": f"tpay_test-{order['order_no']}-held"}


# Each case: how the callback differs from the order's own, the answer, the outcome.
HANDED_ON: dict[str, tuple[Any, int, str]] = {
    "amount differs": (lambda o: {"amount": o["amount"] + 1}, 409, "needs_review"),
    "user differs": (lambda o: {"user_id": "someone_else"}, 409, "needs_review"),
    "pgcode not requested": (lambda o: {"pgcode": "banktransfer"}, 409, "needs_review"),
    "unknown order": (lambda o: {"order_no": "NO-SUCH-ORDER"}, 404, "unknown_order"),
    "payhash of no key": (lambda o: {"payhash": "AB" * 32}, 401, "rejected"),
    "a billkey to keep": (lambda o: {"billkey": "BK-1"}, 0, "applied"),
    "account fields": (lambda o: {"account_no": "123-456"}, 0, "applied"),
}


@pytest.mark.parametrize("case", list(HANDED_ON))
async def test_every_other_case_is_handed_to_the_general_path_with_nothing_written(
    case: str, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    engine: AsyncEngine, fast_path: FastPath,
) -> None:
    change, code, outcome = HANDED_ON[case]
    order = await create_order(shop)
    body = callback_body(order, **change(order))
    if "payhash" not in change(order):
        body["payhash"] = payhash(body["user_id"], body["amount"], body["tid"])
    r = await payletter_peer.post("/payletter/callback", json=body)
    assert r.json()["code"] == code, r.text
    assert fast_path.answers == taken(engine, None)
    # One delivery, written once (by the general path), saying what it did.
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 1
    assert await scalar(engine, "SELECT outcome FROM deliveries") == outcome
    events = await scalar(engine, "SELECT count(*) FROM outbox_events")
    assert events == (1 if outcome in ("applied", "needs_review") else 0)


async def test_a_tid_another_order_holds_is_held_for_review(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
    fast_path: FastPath,
) -> None:
    first, second = await create_order(shop), await create_order(shop)
    tid = "tpay_test-shared"
    assert (await payletter_peer.post("/payletter/callback",
                                      json=callback_body(first, tid=tid))).json() == ACK
    r = await payletter_peer.post("/payletter/callback", json=callback_body(second, tid=tid))
    assert r.json()["code"] == 409
    assert fast_path.answers == taken(engine, "applied", None)
    assert (await stored(engine, second["order_no"]))["order"]["status"] == "needs_review"


async def test_the_same_tid_on_two_orders_at_once_pays_one_and_holds_the_other(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    """Racing callbacks carrying one tid for two orders: the unique tid decides; the loser
    is handed on (a unique violation is not an outage) and held for review."""
    for round_no in range(5):
        a, b = await create_order(shop), await create_order(shop)
        tid = f"tpay_test-race-{round_no}"

        async def deliver(order: dict[str, Any], tid: str) -> int:
            async with client_for(gateway_app, peer=PAYLETTER_IP) as c:
                answer = await c.post("/payletter/callback", json=callback_body(order, tid=tid))
                code: int = answer.json()["code"]
                return code

        codes = sorted(await asyncio.gather(deliver(a, tid), deliver(b, tid)))
        assert codes == [0, 409]
        statuses = sorted([(await stored(engine, o["order_no"]))["order"]["status"]
                           for o in (a, b)])
        assert statuses == ["needs_review", "paid"]


async def test_a_wrong_merchants_key_is_refused(
    database_url: str, engine: AsyncEngine, fast_path: FastPath,
) -> None:
    """A payhash made with another merchant's key verifies for that merchant only: the
    order's own merchant decides, as on the general path."""
    merchants = json.dumps([PUBLIC_TEST_MERCHANT, AUTO_TEST])
    app = create_app(make_settings(database_url, payletter_merchants=merchants),
                     payletter_transport=FakePayletter().transport)
    async with running(app), \
            client_for(app, authorization="Bearer shop-token-for-tests") as shop, \
            client_for(app, peer=PAYLETTER_IP) as peer:
        order = await create_order(shop, client_id="pay_test")
        body = callback_body(order)
        body["payhash"] = payhash(body["user_id"], body["amount"], body["tid"],
                                  key=AUTO_TEST["payment_key"])
        r = await peer.post("/payletter/callback", json=body)
    assert r.json()["code"] == 401
    assert fast_path.answers == taken(engine, None)
    assert await scalar(engine, "SELECT verification FROM deliveries") == "payhash_bad"
    assert await scalar(engine, "SELECT status FROM orders") == "pending"


@pytest.fixture
async def locked_order(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A second connection that can hold an order's row lock (the service's own kind)."""
    async with engine.connect() as holder:
        yield holder


async def test_a_statement_cut_off_is_not_acknowledged_and_the_redelivery_applies(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
    locked_order: Any, fast_path: FastPath,
) -> None:
    """A real fault: the callback's statement waits on the order's lock, and its server
    process is terminated. Nothing of it is committed, Payletter is told to redeliver, the
    delivery is kept as an error, and the redelivery applies once."""
    if not on_postgres(engine):
        pytest.skip("SQLite runs in the service's own process: there is no database server "
                    "process to terminate (this fault exists on PostgreSQL only)")
    order = await create_order(shop)
    body = callback_body(order)
    await locked_order.execute(text("SELECT 1 FROM orders WHERE order_no = :no FOR NO KEY UPDATE"),
                               {"no": order["order_no"]})
    pending = asyncio.create_task(payletter_peer.post("/payletter/callback", json=body))
    waiting = ("SELECT pid FROM pg_stat_activity WHERE query LIKE '%WITH seen AS%' "
               "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
    for _ in range(200):
        pid = (await locked_order.execute(text(waiting))).scalar()
        if pid is not None:
            break
        await asyncio.sleep(0.025)
    assert pid is not None, "the callback's statement never waited on the lock"
    await locked_order.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    cut = await asyncio.wait_for(pending, timeout=10)
    await locked_order.rollback()

    assert cut.json()["code"] == 503
    after = await stored(engine, order["order_no"])
    assert after["order"]["status"] == "pending"
    assert after["transitions"] == [] and after["events"] == []
    assert [d[3] for d in after["deliveries"]] == ["error"]

    assert (await payletter_peer.post("/payletter/callback", json=body)).json() == ACK
    again = await stored(engine, order["order_no"])
    assert again["order"]["status"] == "paid" and len(again["events"]) == 1
    assert [d[3] for d in again["deliveries"]] == ["error", "applied"]
