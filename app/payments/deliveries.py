"""What operators see of stored deliveries: everything but the raw body and the signed
query (they hold payhashes, billkeys and link signatures; `deliveries replay` uses them)."""

from __future__ import annotations

from typing import Any, Literal

from app.models import Delivery

DeliveryKind = Literal["callback", "return", "cancel"]
DeliveryOutcome = Literal["applied", "duplicate", "needs_review", "unknown_order", "rejected",
                          "ignored", "error"]


def delivery_summary(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id, "kind": delivery.kind, "received_at": delivery.received_at,
        "source_addr": delivery.source_addr, "order_no": delivery.order_no,
        "tid": delivery.tid, "verification": delivery.verification,
        "outcome": delivery.outcome, "response_code": delivery.response_code,
        "detail": delivery.detail,
    }
