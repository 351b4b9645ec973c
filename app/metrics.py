"""Prometheus metrics. Labels are small fixed sets: never an order_no or an address.

With several uvicorn workers each process keeps its own values, so a scrape would see one
worker's at random. `serve` then points PROMETHEUS_MULTIPROC_DIR at a fresh folder before
the workers start: prometheus_client keeps every process's values in files there, and
`exposition()` sums them (gauges: the most recent value written by any worker).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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
ORDERS = Gauge(
    "gateway_orders",
    "Orders by state (counted when /metrics is scraped).",
    ["status"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)

_UNVERIFIED = {"payhash_bad", "payhash_missing", "signature_bad", "status_unconfirmed",
               "malformed"}


def observe_delivery(kind: str, outcome: str, verification: str, seconds: float) -> None:
    DELIVERIES.labels(kind=kind, outcome=outcome).inc()
    APPLY_SECONDS.labels(kind=kind).observe(seconds)
    if outcome == "duplicate":
        DUPLICATES.labels(kind=kind).inc()
    if outcome in ("rejected", "unknown_order", "error") and verification in _UNVERIFIED:
        VERIFICATION_FAILURES.labels(kind=kind, verification=verification).inc()
