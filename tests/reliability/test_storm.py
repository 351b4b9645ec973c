"""Redelivery storm: every order paid through the simulator gets 20 deliveries at once.

Two service processes share one PostgreSQL database (a cluster of the test's own, so no
other user of a shared server takes its connections); orders are created through both (so
Payletter's callbacks, which go to the service that opened the payment, reach both), and
the browser's return is posted to both in turn. Per order: the callback the simulator sends
on approval, its concurrent copies (`/_sim/callbacks/{token}/send`), and the returns, all
started together so callbacks and returns interleave. Exactly one application per order,
every delivery answered (code 0 or a redirect) and on record, no 500.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from harness.processes import Process
from tests.reliability.harness import (
    Deadlines,
    Figures,
    PrivateCluster,
    ServerLog,
    callback_log,
    check,
    create_orders,
    current_scale,
    delivery_endings,
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

PREFIX = "STORM"


def on_service(url: str, service: Process) -> str:
    """The same return URL (path, signed query) on another service process."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=urlsplit(service.url).netloc))


async def test_redelivery_storm_applies_every_payment_exactly_once() -> None:
    async with private_cluster() as cluster:
        engine = create_engine(cluster.url)
        try:
            await storm(cluster, engine)
        finally:
            await engine.dispose()


async def storm(cluster: PrivateCluster, engine: AsyncEngine) -> None:
    scale = current_scale()
    server_log = ServerLog(cluster.server)
    orders, copies, returns = scale.storm_orders, scale.storm_callbacks, scale.storm_returns
    logs = log_dir("storm")
    deadlines = Deadlines()
    simulator = start_simulator(logs, interval=1.0)
    services: list[Process] = []
    processes = [simulator]
    try:
        for n in range(2):
            services.append(start_gateway(logs, f"storm-service-{n}",
                                          database_url=cluster.url,
                                          simulator_url=simulator.url))
        processes += services
        started = time.monotonic()
        order_nos = [f"{PREFIX}{n:06d}" for n in range(orders)]
        created = await create_orders(services, order_nos)
        created_in = time.monotonic() - started

        rng = random.Random(8)
        answers: Counter[str] = Counter()  # what the returns were answered
        tids: dict[str, str] = {}
        gate = asyncio.Semaphore(scale.storm_orders_in_flight)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with (
            httpx.AsyncClient(base_url=simulator.url, timeout=60, limits=limits) as sim,
            httpx.AsyncClient(timeout=30, limits=limits) as browser,
        ):
            async def post_return(url: str, fields: dict[str, str]) -> None:
                try:
                    r = await browser.post(url, data=fields)
                except httpx.HTTPError as exc:  # no answer: counted, and the test fails
                    answers[f"no answer ({type(exc).__name__})"] += 1
                    return
                outcome = parse_qs(urlsplit(r.headers.get("location", "")).query).get(
                    "outcome", ["-"])[0]
                answers[f"{r.status_code} {outcome}"] += 1

            async def send_copies(token: str) -> None:
                r = await sim.post(f"/_sim/callbacks/{token}/send",
                                   json={"copies": copies - 1, "concurrent": True})
                assert r.status_code == 200, r.text

            async def storm(n: int, order_no: str) -> None:
                async with gate:
                    token = created[order_no]["token"]
                    approved = await sim.post(f"/_sim/payments/{token}/approve")
                    assert approved.status_code == 200, approved.text
                    result: dict[str, Any] = approved.json()  # its callback is on its way
                    tids[order_no] = result["return_fields"]["tid"]
                    jobs = [send_copies(token)] + [
                        post_return(on_service(result["return_url"], services[(n + i) % 2]),
                                    result["return_fields"])
                        for i in range(returns)]
                    rng.shuffle(jobs)
                    await asyncio.gather(*jobs)

            storm_started = time.monotonic()
            await asyncio.gather(*(storm(n, no) for n, no in enumerate(order_nos)))
            stormed_in = time.monotonic() - storm_started

            attempts: list[dict[str, Any]] = []

            async def all_settled() -> bool:
                nonlocal attempts
                attempts = [a for a in await callback_log(sim)
                            if a["order_no"].startswith(PREFIX)]
                return settled(attempts, orders * copies)

            settle_in = await deadlines.wait("every callback delivery to end", all_settled,
                                         timeout=60 + orders * 0.2, every=0.5)
        total = time.monotonic() - started
    finally:
        await stop_all(processes)

    book = await ledger(engine, PREFIX, tids)
    database_errors = server_log.errors()
    scans = [scan_log(s) for s in services]
    scan = scans[0].merge(scans[1])
    outcomes = Counter(a["outcome"] for a in attempts)
    callback_statuses = Counter(a["response_status"] for a in attempts)
    returns_sent = sum(answers.values())
    sent = len(attempts) + returns_sent
    answered_500 = (callback_statuses[500] + sum(n for k, n in answers.items()
                                                  if k.startswith("500")))
    figures = Figures(
        scenario="storm",
        title="Redelivery storm: two service processes, one PostgreSQL",
        scale=scale.name,
        counts={
            **required_counts(sent=sent, answered_500=answered_500, book=book, scan=scan),
            "orders": orders,
            "callback_attempts": len(attempts),
            "callbacks_acknowledged": outcomes["acknowledged"],
            "callback_answers_non_zero": sum(n for status, n in callback_statuses.items()
                                             if status not in (200, None)),
            "callbacks_unanswered": callback_statuses[None],
            "returns_sent": returns_sent,
            "returns_answered_303": sum(n for k, n in answers.items() if k.startswith("303")),
            "deliveries_recorded": book.recorded,
            "recorded_applied": sum(n for k, n in book.deliveries.items()
                                    if k.endswith("/applied")),
            "recorded_duplicate": sum(n for k, n in book.deliveries.items()
                                      if k.endswith("/duplicate")),
            "paid_with_wrong_tid": book.wrong_tid,
            "postgresql_error_lines": len(database_errors),
            "service_0_requests": sum(scans[0].statuses.values()),
            "service_1_requests": sum(scans[1].statuses.values()),
        },
        parameters={"orders": orders, "callbacks_per_order": copies,
                    "returns_per_order": returns, "deliveries_per_order": copies + returns,
                    "orders_in_flight": scale.storm_orders_in_flight,
                    "deliveries_in_flight_max": scale.storm_orders_in_flight * (copies + returns),
                    "service_processes": 2, "simulator_redelivery_interval_s": 1.0},
        timings={"create_orders_s": round(created_in, 1), "storm_s": round(stormed_in, 1),
                 "settle_s": round(settle_in, 1), "total_s": round(total, 1),
                 "deliveries_per_s": round(sent / max(stormed_in + settle_in, 0.001))},
        missed=deadlines.missed,
        machine={"postgresql": await postgres_version(engine)},
        notes=[f"return answers: {dict(answers)}",
               f"callback attempt outcomes: {dict(outcomes)}",
               f"how each callback delivery ended: {dict(delivery_endings(attempts))}",
               f"deliveries on record (kind/outcome): {dict(book.deliveries)}",
               *database_errors[:20]],
    )
    check(figures, expected_applications=orders)
    # Every delivery answered (no timeout, no broken connection): a callback with code 0, or
    # a non-zero code it was redelivered after until code 0; a return with a redirect.
    assert callback_statuses[None] == 0, outcomes
    assert set(callback_statuses) <= {200, 503}, callback_statuses
    endings = delivery_endings(attempts)
    ended_acknowledged = sum(n for end, n in endings.items() if end.startswith("acknowledged"))
    assert ended_acknowledged == sum(endings.values()) == orders * copies, endings
    assert figures.counts["returns_answered_303"] == returns_sent == orders * returns, answers
    # ... and on record, each exactly once.
    assert book.recorded == sent, (book.deliveries, sent)
    assert book.deliveries["callback/applied"] + book.deliveries["return/applied"] == orders
    assert book.paid == orders and book.wrong_tid == 0
    # Both processes took part in callbacks and returns alike.
    for one in scans:
        assert one.statuses["/payletter/callback 200"] > 0, one.statuses
        assert one.statuses["/payletter/return 303"] > 0, one.statuses
