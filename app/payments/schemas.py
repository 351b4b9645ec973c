"""A stored delivery as the API shows it (never its raw body)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DeliveryOut(BaseModel):
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
