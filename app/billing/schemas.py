"""What the billing API accepts (charges, amount-0 registrations) and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.kit.responses import Answer, AuditEntryOut
from app.orders.schemas import OrderNo, OrderTerms, OrderViewOut


class ChargeCreate(BaseModel):
    """A charge of a stored billkey (Payletter's autopay field names)."""

    model_config = ConfigDict(extra="forbid")

    billkey_id: StrictInt = Field(gt=0, le=2**63 - 1,
                                  description="The id GET /billing/billkeys shows.")
    amount: StrictInt = Field(description="Whole won.")
    product_name: str
    order_no: OrderNo = None
    taxfree_amount: StrictInt | None = None
    tax_amount: StrictInt | None = None
    service_name: str | None = None
    user_name: str | None = None
    # Optional assertions: refused when the billkey belongs to another merchant or user.
    client_id: str | None = Field(default=None, max_length=20)
    user_id: str | None = Field(default=None, max_length=50)


class RegistrationCreate(OrderTerms):
    """An amount-0 autopay sign-up: the order terms of POST /orders minus the money."""


class BillkeyOut(Answer):
    """A stored billkey, masked: the key itself is never shown (`billkey_view`)."""

    id: int
    client_id: str
    user_id: str
    pgcode: str
    masked_billkey: str = Field(description="… and the key's last 4 characters")
    status: Literal["active", "revoked"]
    first_amount: int
    first_paid_at: datetime
    last_charged_at: datetime | None
    verified_at: datetime | None = Field(
        description="When Payletter first confirmed it (a callback or a charge)")
    revoked_at: datetime | None
    created_at: datetime


class BillkeyListOut(Answer):
    billkeys: list[BillkeyOut]


class ChargeOut(OrderViewOut):
    """A paid charge: its order, and the billkey charged."""

    billkey_id: int


class BillingAuditOut(Answer):
    """The newest audit rows of charges, registrations and revokes, newest first."""

    audit: list[AuditEntryOut]
