"""Crash: the service is SIGKILLed in the middle of a stream of callbacks, then restarted.

Right after the kill, before anything restarts, every callback the simulator saw answered
with code 0 must be in the database (code 0 is sent only after the commit). The stream goes
on while the service is down (callbacks refused); the service comes back on the same port
(the callback URLs point at it) and the simulator's redeliveries apply the rest, each
payment once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.postgres import free_port
from tests.reliability.harness import (
    Deadlines,
    Figures,
    callback_log,
    check,
    create_orders,
    current_scale,
    delivery_endings,
    ledger,
    log_dir,
    postgres_version,
    required_counts,
    scan_log,
    settled,
    start_gateway,
    start_simulator,
    stop_all,
    wait_until,
)

pytestmark = pytest.mark.e2e

PREFIX = "CRASH"
BATCH = 5  # orders approved at once: a burst of callbacks is in flight when the kill lands


async def test_sigkill_mid_stream_keeps_every_acknowledged_callback(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    scale = current_scale()
    orders, copies, interval = scale.crash_orders, scale.crash_copies, scale.crash_interval
    logs = log_dir("crash")
    deadlines = Deadlines()
    simulator = start_simulator(logs, interval=interval)
    processes = [simulator]
    port = free_port()
    marks: dict[str, datetime] = {}
    tids: dict[str, str] = {}
    try:
        first = start_gateway(logs, "crash-service-1", database_url=postgres_url,
                              simulator_url=simulator.url, port=port)
        processes.append(first)
        order_nos = [f"{PREFIX}{n:05d}" for n in range(orders)]
        created = await create_orders([first], order_nos)
        batches = [order_nos[i:i + BATCH] for i in range(0, orders, BATCH)]
        gap = scale.crash_stream_seconds / len(batches)
        kill_batch = len(batches) // 2
        killed = asyncio.Event()
        started = time.monotonic()

        async with httpx.AsyncClient(base_url=simulator.url, timeout=30) as sim:
            r = await sim.post("/_sim/faults", json={"duplicate_callbacks": copies})
            assert r.status_code == 200, r.text

            async def approve(order_no: str) -> None:
                r = await sim.post(f"/_sim/payments/{created[order_no]['token']}/approve")
                assert r.status_code == 200, r.text
                tids[order_no] = r.json()["return_fields"]["tid"]

            async def some_acknowledged() -> bool:
                approved = sum(len(b) for b in batches[:kill_batch])
                acked = {a["order_no"] for a in await callback_log(sim)
                         if a["outcome"] == "acknowledged"}
                return len(acked) >= approved // 3

            async def stream() -> None:
                begin = time.monotonic()
                for n, batch in enumerate(batches):
                    if n == kill_batch:  # mid-stream: some answered, a burst on its way
                        waited = await wait_until("acknowledgements before the kill",
                                                  some_acknowledged, timeout=30, every=0.05)
                        begin += waited
                    await asyncio.sleep(max(0.0, begin + n * gap - time.monotonic()))
                    await asyncio.gather(*(approve(order_no) for order_no in batch))
                    if n == kill_batch:
                        await asyncio.sleep(0.01)  # its callbacks are being served
                        first.popen.send_signal(signal.SIGKILL)
                        marks["kill"] = datetime.now(UTC)
                        killed.set()

            streaming = asyncio.create_task(stream())
            await asyncio.wait_for(killed.wait(), timeout=scale.crash_stream_seconds + 30)
            await asyncio.to_thread(first.popen.wait, 10)
            # Before anything restarts: every code 0 the simulator got is in the database.
            at_kill = await callback_log(sim)
            acked = {a["order_no"] for a in at_kill if a["outcome"] == "acknowledged"}
            book_at_kill = await ledger(pg_engine, PREFIX, tids)

            await asyncio.sleep(max(0.0, scale.crash_down_seconds
                                    - (datetime.now(UTC) - marks["kill"]).total_seconds()))
            marks["restart"] = datetime.now(UTC)
            second = await asyncio.to_thread(  # the stream goes on meanwhile
                start_gateway, logs, "crash-service-2", database_url=postgres_url,
                simulator_url=simulator.url, port=port)
            processes.append(second)
            marks["up"] = datetime.now(UTC)
            await streaming
            stream_done = time.monotonic() - started

            async def all_paid() -> bool:
                return (await ledger(pg_engine, PREFIX)).paid == orders

            recovered_in = await deadlines.wait("every order paid after the restart", all_paid,
                                            timeout=interval * 20 + 30, every=0.25)
            attempts: list[dict[str, Any]] = []

            async def all_settled() -> bool:
                nonlocal attempts
                attempts = [a for a in await callback_log(sim)
                            if a["order_no"].startswith(PREFIX)]
                return settled(attempts, orders * copies)

            await deadlines.wait("every callback delivery to end", all_settled,
                             timeout=interval * 20 + 30, every=0.5)
        total = time.monotonic() - started
    finally:
        await stop_all(processes)

    book = await ledger(pg_engine, PREFIX, tids)
    scan = scan_log(first).merge(scan_log(second))
    outcomes = Counter(a["outcome"] for a in attempts)
    # Cut by the kill: sent before it, not answered (connection reset, or no answer at all).
    cut = [a for a in attempts if a["outcome"] in ("error", "timeout")
           and datetime.fromisoformat(a["sent_at"]) < marks["kill"]]
    refused = [a for a in attempts if a["outcome"] in ("error", "timeout")
               and marks["kill"] <= datetime.fromisoformat(a["sent_at"]) < marks["up"]]
    figures = Figures(
        scenario="crash",
        title="Crash: SIGKILL the service mid-stream, restart it",
        scale=scale.name,
        counts={
            **required_counts(
                sent=len(attempts), book=book, scan=scan,
                answered_500=sum(1 for a in attempts if a["response_status"] == 500)),
            "orders": orders,
            "acknowledged_before_kill": len(acked),
            "acknowledged_before_kill_not_in_database": len(acked - book_at_kill.paid_orders),
            "paid_at_kill_not_yet_acknowledged": len(book_at_kill.paid_orders - acked),
            "cut_by_the_kill": len(cut),
            "refused_while_down": len(refused),
            "callbacks_acknowledged": outcomes["acknowledged"],
            "deliveries_recorded": book.recorded,
            "paid_with_wrong_tid": book.wrong_tid,
        },
        parameters={"orders": orders, "callback_copies": copies, "batch": BATCH,
                    "stream_s": scale.crash_stream_seconds,
                    "kill_after_orders": (kill_batch + 1) * BATCH,
                    "down_s": scale.crash_down_seconds,
                    "simulator_redelivery_interval_s": interval, "signal": "SIGKILL"},
        timings={"stream_s": round(stream_done, 1),
                 "down_s": round((marks["up"] - marks["kill"]).total_seconds(), 1),
                 "all_paid_after_stream_s": round(recovered_in, 1),
                 "total_s": round(total, 1)},
        missed=deadlines.missed,
        machine={"postgresql": await postgres_version(pg_engine)},
        notes=[f"callback attempt outcomes: {dict(outcomes)}",
               f"how each delivery ended: {dict(delivery_endings(attempts))}",
               f"deliveries on record (kind/outcome): {dict(book.deliveries)}",
               "cut by the kill: " + ", ".join(sorted({str(a['error'])[:60] for a in cut}))],
    )
    check(figures, expected_applications=orders)
    assert acked <= book_at_kill.paid_orders, acked - book_at_kill.paid_orders
    assert book_at_kill.double_applied == 0
    assert 0 < len(acked) < orders  # the kill really was mid-stream
    assert outcomes["acknowledged"] == orders * copies  # every delivery ended acknowledged
    assert refused, "no callback arrived while the service was down"
    assert book.paid == orders and book.wrong_tid == 0
