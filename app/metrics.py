"""Prometheus metrics. Labels are small fixed sets: never an order_no or an address."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

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
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "gateway_webhook_oldest_pending_seconds",
    "Age of the oldest undelivered outbox event.",
    registry=REGISTRY,
)
