"""What the webhooks API answers: outbox events (never their payloads) and replays."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.kit.responses import Answer

EventStatus = Literal["pending", "delivered", "dead"]


class WebhookEventOut(Answer):
    """One event of the outbox, as GET /webhooks/events lists it."""

    event_id: str = Field(description="The webhook-id the shop receives")
    type: str
    order_no: str
    status: EventStatus
    attempts: int
    next_attempt_at: datetime
    last_status: int | None = Field(description="The shop's HTTP status at the last attempt")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class ReplayedOut(Answer):
    replayed: int = Field(description="How many events are queued to be sent again")
