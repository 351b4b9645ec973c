"""Order events for the shop, written in the same transaction as the state change.

Nothing is sent from here: the dispatcher (`app.webhooks.dispatcher`) delivers what this
module records, so an event exists exactly when its state change was committed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Order, OutboxEvent
from app.orders.schemas import OrderOut
from app.orders.states import OrderStatus

# The state an order enters → the event the shop receives. Entering `created` or
# `pending` tells the shop nothing it doesn't know from its own POST /orders.
EVENT_TYPES: dict[OrderStatus, str] = {
    OrderStatus.AWAITING_DEPOSIT: "order.awaiting_deposit",
    OrderStatus.PAID: "order.paid",
    OrderStatus.FAILED: "order.failed",
    OrderStatus.ABANDONED: "order.abandoned",
    OrderStatus.PARTIALLY_CANCELLED: "order.partially_cancelled",
    OrderStatus.CANCELLED: "order.cancelled",
    OrderStatus.NEEDS_REVIEW: "order.needs_review",
}


def new_event_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def iso_utc(moment: datetime) -> str:
    """A UTC time as events write it: "2026-12-05T03:04:05.123456Z"."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_payload(event_id: str, event_type: str, order: Order) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "timestamp": iso_utc(utcnow()),
        "data": OrderOut.model_validate(order).model_dump(mode="json"),
    }


async def record_event(session: AsyncSession, order: Order) -> OutboxEvent | None:
    """Add the event for the state `order` just entered (if the shop hears of it)."""
    event_type = EVENT_TYPES.get(OrderStatus(order.status))
    if event_type is None:
        return None
    event_id = new_event_id()
    event = OutboxEvent(
        event_id=event_id,
        order_id=order.id,
        order_no=order.order_no,
        type=event_type,
        payload=event_payload(event_id, event_type, order),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(event)
    return event
