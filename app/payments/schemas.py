"""A stored delivery as the API shows it (never its raw body)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict

from app.kit.responses import Answer


class DeliveryOut(Answer):
    """A callback, return or cancel as an order's history shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    received_at: datetime
    source_addr: str
    tid: str | None
    verification: str
    outcome: str
    detail: str | None
    response_code: int


class DeliverySummaryOut(DeliveryOut):
    """GET /deliveries: a delivery with the order it named (`delivery_summary`)."""

    order_no: str | None
