"""Dispatcher processes on one PostgreSQL: shared work, no double sending, survive a kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import utcnow
from app.models import Order, OutboxEvent
from harness.processes import ROOT
from tests.receiver_server import Receipt, ReceiverServer

pytestmark = pytest.mark.e2e

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    server = ReceiverServer(SECRET)
    server.start()
    yield server
    server.stop()


async def seed_events(engine: AsyncEngine, orders: int, per_order: int) -> list[str]:
    """`orders` × `per_order` pending events, interleaved across orders like real traffic."""
    now = utcnow()
    async with engine.begin() as conn:
        order_ids = []
        for n in range(orders):
            result = await conn.execute(insert(Order).values(
                order_no=f"W{n:05d}", client_id="pay_test", pgcode="creditcard",
                status="paid", amount=1000, taxfree_amount=0, tax_amount=91,
                cancelled_amount=0, product_name="p", user_id="u", request_options={},
                payment_details={}, created_at=now, updated_at=now).returning(Order.id))
            order_ids.append(result.scalar_one())
        rows = []
        for seq in range(per_order):
            for n, order_id in enumerate(order_ids):
                event_id = f"evt_{uuid.uuid4().hex}"
                rows.append({"event_id": event_id, "order_id": order_id,
                             "order_no": f"W{n:05d}", "type": "order.paid",
                             "payload": {"id": event_id, "type": "order.paid",
                                         "data": {"order_no": f"W{n:05d}", "seq": seq}},
                             "status": "pending", "attempts": 0, "next_attempt_at": now,
                             "created_at": now})
        await conn.execute(insert(OutboxEvent), rows)
    return [r["event_id"] for r in rows]


def start_dispatcher(postgres_url: str, url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ, "DATABASE_URL": postgres_url, "PAYLETTER_ENV": "sim",
        "SHOP_WEBHOOK_URL": url, "SHOP_WEBHOOK_SECRET": SECRET,
        "WEBHOOK_POLL_SECONDS": "0.05", "WEBHOOK_RETRY_BASE_SECONDS": "0.05", **env,
    }
    return subprocess.Popen([sys.executable, "-m", "app.cli", "webhooks", "dispatch"],
                            cwd=ROOT, env=environment, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


async def wait_all_delivered(engine: AsyncEngine, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with engine.connect() as conn:
            left = (await conn.execute(text(
                "SELECT count(*) FROM outbox_events WHERE status <> 'delivered'"))).scalar()
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{left} events still undelivered")
        await asyncio.sleep(0.1)


def assert_per_order_sequence(receipts: list[Receipt]) -> None:
    """Each order's events arrived in the order they were written (first arrival counts)."""
    seen: dict[str, list[int]] = {}
    first: set[str] = set()
    for receipt in receipts:
        if receipt.webhook_id in first:
            continue
        first.add(receipt.webhook_id)
        data = receipt.body["data"]
        seen.setdefault(data["order_no"], []).append(data["seq"])
    for order_no, sequence in seen.items():
        assert sequence == sorted(sequence), f"{order_no} out of order: {sequence}"


@pytest.fixture
async def stop_all() -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


async def test_two_dispatchers_deliver_a_thousand_events_exactly_once_in_order(
    postgres_url: str, pg_engine: AsyncEngine, receiver: ReceiverServer, tmp_path: Path,
    stop_all: list[subprocess.Popen[bytes]],
) -> None:
    event_ids = await seed_events(pg_engine, orders=200, per_order=5)
    assert len(event_ids) == 1000
    for n in range(2):
        stop_all.append(start_dispatcher(postgres_url, receiver.url, tmp_path / f"d{n}.log",
                                         WEBHOOK_BATCH_SIZE="25"))
    await wait_all_delivered(pg_engine)
    receipts = receiver.snapshot()
    assert sorted(r.webhook_id for r in receipts) == sorted(event_ids)  # each exactly once
    assert_per_order_sequence(receipts)


async def test_a_dispatcher_killed_mid_batch_loses_nothing_and_repeats_only_same_ids(
    postgres_url: str, pg_engine: AsyncEngine, receiver: ReceiverServer, tmp_path: Path,
    stop_all: list[subprocess.Popen[bytes]],
) -> None:
    event_ids = await seed_events(pg_engine, orders=40, per_order=3)
    receiver.delay = 0.2  # each delivery is in flight for a while: the kill lands mid-batch
    first = start_dispatcher(postgres_url, receiver.url, tmp_path / "first.log",
                             WEBHOOK_BATCH_SIZE="20", WEBHOOK_LEASE_SECONDS="2")
    stop_all.append(first)
    deadline = time.monotonic() + 30
    while len(receiver.snapshot()) < 10:
        assert time.monotonic() < deadline, "the first dispatcher sent nothing"
        await asyncio.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    receiver.delay = 0.0
    stop_all.append(start_dispatcher(postgres_url, receiver.url, tmp_path / "second.log",
                                     WEBHOOK_BATCH_SIZE="20", WEBHOOK_LEASE_SECONDS="2"))
    await wait_all_delivered(pg_engine)
    receipts = receiver.snapshot()
    assert {r.webhook_id for r in receipts} == set(event_ids)  # nothing lost
    by_id: dict[str, bytes] = {}
    for receipt in receipts:  # a repeat is the same event: same webhook-id, same body
        assert by_id.setdefault(receipt.webhook_id, receipt.raw) == receipt.raw
    assert_per_order_sequence(receipts)
