"""Database outage: PostgreSQL is stopped in the middle of a stream of callbacks.

The test starts a cluster of its own, and stops it with `pg_ctl -m fast stop` (connections
cut, new ones refused) while the simulator keeps approving payments and delivering their
callbacks. While it is down, no answer may be code 0 (non-zero or a timeout only); once
it is back, the simulator's redeliveries must apply everything, each payment once, with
the same service process (no restart: the pool pings and reconnects).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from harness.processes import SHOP_TOKEN
from tests.reliability.harness import (
    Deadlines,
    Figures,
    PrivateCluster,
    ServerLog,
    callback_log,
    check,
    create_orders,
    current_scale,
    ledger,
    log_dir,
    postgres_version,
    private_cluster,
    required_counts,
    scan_log,
    settled,
    start_gateway,
    start_simulator,
    stop_all,
)

pytestmark = pytest.mark.e2e

PREFIX = "OUTAGE"


def answered_at(attempt: dict[str, Any]) -> datetime:
    sent = datetime.fromisoformat(attempt["sent_at"])
    return sent + timedelta(milliseconds=attempt["elapsed_ms"])


async def test_database_outage_mid_stream_acknowledges_nothing_and_loses_nothing() -> None:
    async with private_cluster() as cluster:
        engine = create_engine(cluster.url)
        try:
            await outage(cluster, engine)
        finally:
            await engine.dispose()


async def outage(cluster: PrivateCluster, engine: AsyncEngine) -> None:
    scale = current_scale()
    orders, down_for = scale.outage_orders, scale.outage_seconds
    lead, interval = scale.outage_lead_seconds, scale.outage_interval
    assert interval * 19 > down_for * 1.5, "redeliveries must outlast the outage"
    logs = log_dir("outage")
    deadlines = Deadlines()
    server_log = ServerLog(cluster.server)
    simulator = start_simulator(logs, interval=interval)
    processes = [simulator]
    marks: dict[str, datetime] = {}
    probes: Counter[str] = Counter()  # what the service answered us while the database was down
    tids: dict[str, str] = {}
    try:
        service = start_gateway(logs, "outage-service", database_url=cluster.url,
                                simulator_url=simulator.url)
        processes.append(service)
        pid = service.popen.pid
        order_nos = [f"{PREFIX}{n:05d}" for n in range(orders)]
        created = await create_orders([service], order_nos)
        started = time.monotonic()
        gap = (lead + down_for + lead) / orders  # the stream spans before, during and after

        async with (
            httpx.AsyncClient(base_url=simulator.url, timeout=30) as sim,
            httpx.AsyncClient(base_url=service.url, timeout=10,
                              headers={"authorization": f"Bearer {SHOP_TOKEN}"}) as shop,
        ):
            async def stream() -> None:
                begin = time.monotonic()
                for n, order_no in enumerate(order_nos):
                    await asyncio.sleep(max(0.0, begin + n * gap - time.monotonic()))
                    token = created[order_no]["token"]
                    r = await sim.post(f"/_sim/payments/{token}/approve")  # callback starts
                    assert r.status_code == 200, r.text
                    tids[order_no] = r.json()["return_fields"]["tid"]

            async def probe() -> None:
                for path in ("/readyz", f"/orders/{order_nos[0]}"):
                    try:
                        r = await shop.get(path)
                        probes[f"{path.split('/')[1]} {r.status_code}"] += 1
                    except httpx.HTTPError as exc:
                        probes[f"{path.split('/')[1]} {type(exc).__name__}"] += 1

            async def fault() -> None:
                await asyncio.sleep(lead)
                marks["stop_begin"] = datetime.now(UTC)
                await asyncio.to_thread(cluster.stop)
                marks["down"] = datetime.now(UTC)
                deadline = time.monotonic() + down_for
                while time.monotonic() < deadline - 0.5:
                    await probe()
                    await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic() - 0.5)))
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                marks["start_begin"] = datetime.now(UTC)
                await asyncio.to_thread(cluster.start)
                marks["up"] = datetime.now(UTC)

            await asyncio.gather(stream(), fault())
            stream_done = time.monotonic() - started

            # Whatever was acknowledged before the stop is in the database now.
            async def acked_before_stop() -> set[str]:
                return {a["order_no"] for a in await callback_log(sim)
                        if a["outcome"] == "acknowledged"
                        and answered_at(a) <= marks["stop_begin"]}

            before = await acked_before_stop()
            book_at_restart = await ledger(engine, PREFIX)

            async def all_paid() -> bool:
                return (await ledger(engine, PREFIX)).paid == orders

            recovered_in = await deadlines.wait("every order paid after the outage", all_paid,
                                            timeout=interval * 20 + 30, every=0.5)
            attempts: list[dict[str, Any]] = []

            async def all_settled() -> bool:
                nonlocal attempts
                attempts = [a for a in await callback_log(sim)
                            if a["order_no"].startswith(PREFIX)]
                return settled(attempts, orders)

            await deadlines.wait("every callback delivery to end", all_settled,
                             timeout=interval * 20 + 30, every=0.5)
            ready = (await shop.get("/readyz")).status_code
        total = time.monotonic() - started
        same_process = service.popen.poll() is None and service.popen.pid == pid
    finally:
        await stop_all(processes)

    book = await ledger(engine, PREFIX, tids)
    scan = scan_log(service)
    database_errors = server_log.errors()
    # Answered while the database was down: sent after the stop completed, answered before
    # the start began.
    during = [a for a in attempts
              if datetime.fromisoformat(a["sent_at"]) >= marks["down"]
              and answered_at(a) <= marks["start_begin"]]
    # Touching the outage at all (in flight at the stop, or answered while starting again).
    around = [a for a in attempts
              if answered_at(a) >= marks["stop_begin"]
              and datetime.fromisoformat(a["sent_at"]) <= marks["up"]]
    first_ack_after_restart = min(
        ((answered_at(a) - marks["up"]).total_seconds() for a in attempts
         if a["outcome"] == "acknowledged" and answered_at(a) > marks["up"]), default=-1.0)
    during_answers = Counter(
        str(a["response_status"]) if a["response_status"] is not None else a["outcome"]
        for a in during)
    outcomes = Counter(a["outcome"] for a in attempts)
    acknowledged = outcomes["acknowledged"]
    recorded_ack = sum(n for k, n in book.deliveries.items()
                       if k.endswith(("/applied", "/duplicate")))
    figures = Figures(
        scenario="db_outage",
        title="Database outage: PostgreSQL stopped mid-stream",
        scale=scale.name,
        counts={
            **required_counts(
                sent=len(attempts), book=book, scan=scan,
                answered_500=sum(1 for a in attempts if a["response_status"] == 500)),
            "orders": orders,
            "answered_during_outage": len(during),
            "code_0_during_outage": sum(a["outcome"] == "acknowledged" for a in during),
            "attempts_touching_outage": len(around),
            "callbacks_acknowledged": acknowledged,
            "deliveries_recorded": book.recorded,
            "unrecorded_while_database_down": len(attempts) - book.recorded,
            # The redeliveries due arrive together once it is back: some wait too long.
            "not_acknowledged_after_restart": sum(
                1 for a in attempts if a["outcome"] != "acknowledged"
                and datetime.fromisoformat(a["sent_at"]) > marks["up"]),
            "acknowledged_before_stop_and_paid": len(before & book_at_restart.paid_orders),
            "acknowledged_before_stop_not_paid": len(before - book_at_restart.paid_orders),
            "paid_with_wrong_tid": book.wrong_tid,
            "service_restarts": 0 if same_process else 1,
        },
        parameters={"orders": orders, "outage_s": down_for, "stream_s": lead * 2 + down_for,
                    "simulator_redelivery_interval_s": interval,
                    "simulator_max_attempts": 20, "simulator_timeout_s": 5,
                    "stop": "pg_ctl -m fast stop", "service_processes": 1},
        timings={"stream_s": round(stream_done, 1),
                 "database_down_s": round((marks["start_begin"] - marks["down"])
                                          .total_seconds(), 1),
                 "stop_took_s": round((marks["down"] - marks["stop_begin"]).total_seconds(), 2),
                 "start_took_s": round((marks["up"] - marks["start_begin"]).total_seconds(), 2),
                 "first_code_0_after_start_s": round(first_ack_after_restart, 1),
                 "all_paid_after_stream_s": round(recovered_in, 1), "total_s": round(total, 1)},
        missed=deadlines.missed,
        machine={"postgresql": await postgres_version(engine)},
        notes=[f"answers while the database was down: {dict(during_answers)}",
               "their bodies: " + "; ".join(sorted({str(a["response_body"] or a["error"])[:100]
                                                    for a in during})),
               f"service probes while down (readyz, GET /orders/...): {dict(probes)}",
               f"callback attempt outcomes: {dict(outcomes)}",
               f"deliveries on record (kind/outcome): {dict(book.deliveries)}",
               f"PostgreSQL errors/fatals logged: {len(database_errors)} "
               "(connections cut by the stop are expected)"],
    )
    check(figures, expected_applications=orders)
    assert during, "no callback was answered while the database was down"
    assert figures.counts["code_0_during_outage"] == 0, during_answers
    assert set(during_answers) <= {"503", "timeout"}, during_answers
    assert before <= book_at_restart.paid_orders, before - book_at_restart.paid_orders
    assert same_process and ready == 200
    # The same process took callbacks again at once: its pool reconnected by itself.
    assert 0 <= first_ack_after_restart <= 2 * interval + 10, first_ack_after_restart
    assert outcomes["acknowledged"] == orders  # each delivery ended acknowledged
    assert recorded_ack == acknowledged  # every code 0 is on record
    assert book.paid == orders and book.wrong_tid == 0
    assert all(k.startswith("readyz 503") or k.startswith("orders 503") for k in probes), probes
