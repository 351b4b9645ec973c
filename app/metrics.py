"""Prometheus metrics. Labels are small fixed sets: never an order_no or an address.

With several uvicorn workers each process keeps its own values, so a scrape would see one
worker's at random. `serve` then points PROMETHEUS_MULTIPROC_DIR at a fresh folder before
the workers start: prometheus_client keeps every process's values in files there, and
`exposition()` sums them (gauges: the most recent value written by any worker).
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry(auto_describe=True)


@contextmanager
def workers_share_metrics(workers: int) -> Iterator[None]:
    """Around starting workers: a folder for their values, emptied of any earlier run's,
    named in the environment they inherit (and taken out again afterwards)."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        for stale in Path(given).glob("*.db"):  # a restart must not add old counts again
            stale.unlink()
        yield
        return
    if workers <= 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="gateway-metrics-") as folder:
        os.environ[MULTIPROCESS_ENV] = folder  # inherited by the workers uvicorn spawns
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_ENV]


def exposition() -> bytes:
    """The text a scrape gets: this process's metrics, or every worker's summed."""
    if not os.environ.get(MULTIPROCESS_ENV):
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)

DELIVERIES = Counter(
    "gateway_deliveries_total",
    "Inbound Payletter deliveries by kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
FORBIDDEN_SOURCES = Counter(
    "gateway_forbidden_sources_total",
    "Callbacks refused because the caller's address is not allowed (not stored).",
    ["kind"],
    registry=REGISTRY,
)
APPLY_SECONDS = Histogram(
    "gateway_delivery_seconds",
    "Time to verify, apply and commit one delivery.",
    ["kind"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PAYLETTER_CALLS = Histogram(
    "gateway_payletter_call_seconds",
    "Calls to Payletter's API by endpoint and HTTP status (0 = no answer).",
    ["endpoint", "status"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def observe_payletter_call(endpoint: str, status: int, seconds: float) -> None:
    PAYLETTER_CALLS.labels(endpoint=endpoint, status=str(status)).observe(seconds)

WEBHOOK_DELIVERIES = Counter(
    "gateway_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, failed = will retry, dead).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_PENDING = Gauge(
    "gateway_webhook_events_pending",
    "Outbox events not yet delivered.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "gateway_webhook_oldest_pending_seconds",
    "Age of the oldest undelivered outbox event.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)

VERIFICATION_FAILURES = Counter(
    "gateway_verification_failures_total",
    "Deliveries refused because they could not be verified (payhash, signed link, Payletter "
    "would not confirm, malformed).",
    ["kind", "verification"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "gateway_duplicate_deliveries_total",
    "Deliveries of a result that was already applied (answered code 0, changed nothing).",
    ["kind"],
    registry=REGISTRY,
)
TRUNCATED_DELIVERIES = Counter(
    "gateway_deliveries_truncated_total",
    "Anonymous browser deliveries (no link we signed) stored as their head, size and digest.",
    ["kind"],
    registry=REGISTRY,
)
ORDER_COUNT_SECONDS = 15.0
ORDERS = Gauge(
    "gateway_orders",
    "Orders by state (counted when /metrics is scraped, at most every 15 s per process).",
    ["status"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)

class OrderCounts:
    """`gateway_orders`, counted from the database at most once per `interval` seconds in
    this process, however often /metrics is scraped: a flood of scrapes costs one GROUP BY
    per interval. Concurrent scrapes wait for the one count in flight instead of each
    running their own; a failed count waits for the next interval too (a database that is
    down isn't asked on every scrape)."""

    def __init__(self, interval: float = ORDER_COUNT_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._due = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(self, count: Callable[[], Awaitable[Mapping[str, int]]],
                      statuses: Iterable[str]) -> None:
        """Set the gauge from `count()` unless it was counted within the interval."""
        if self.clock() < self._due and not self._lock.locked():
            return
        async with self._lock:  # a count in flight: wait for its values
            if self.clock() < self._due:  # counted while this scrape waited
                return
            self._due = self.clock() + self.interval
            counts = await count()
            for status in statuses:
                ORDERS.labels(status=status).set(counts.get(status, 0))


_UNVERIFIED = {"payhash_bad", "payhash_missing", "signature_bad", "status_unconfirmed",
               "malformed"}


def observe_delivery(kind: str, outcome: str, verification: str, seconds: float) -> None:
    DELIVERIES.labels(kind=kind, outcome=outcome).inc()
    APPLY_SECONDS.labels(kind=kind).observe(seconds)
    if outcome == "duplicate":
        DUPLICATES.labels(kind=kind).inc()
    if outcome in ("rejected", "unknown_order", "error") and verification in _UNVERIFIED:
        VERIFICATION_FAILURES.labels(kind=kind, verification=verification).inc()
