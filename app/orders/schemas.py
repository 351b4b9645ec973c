"""What the orders API accepts and answers (Payletter's field names throughout).

The `*Out` models serialise orders (`OrderOut`, `TransitionOut`) and document the answers
of app/orders/endpoints.py; the refund rows are here too, as part of an order's history
(app/refunds/schemas.py builds on these).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from pydantic.json_schema import SkipJsonSchema

from app.kit.responses import Answer, AuditEntryOut
from app.payments.schemas import DeliveryOut

YesNo = Literal["Y", "N"]
# The order_no a shop may choose (orders, amount-0 registrations, charges).
OrderNo = Annotated[str | None, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$",
                                      description="Generated when absent.")]


class OrderTerms(BaseModel):
    """What every order names, money aside (an amount-0 registration sends just these)."""

    model_config = ConfigDict(extra="forbid")

    order_no: OrderNo = None
    client_id: str | None = Field(default=None, description="Primary merchant when absent.")
    pgcode: str
    product_name: str
    user_id: str = Field(min_length=1, max_length=50)
    user_name: str | None = None
    service_name: str | None = None
    custom_parameter: str | None = None
    email_flag: YesNo | None = None
    email_addr: str | None = None
    receipt_flag: YesNo | None = None
    inapp_flag: YesNo | None = None
    app_return_url: str | None = None
    app_cancel_url: str | None = None
    company_name_flag: YesNo | None = None


class OrderCreate(OrderTerms):
    """The order terms a shop sends. Field rules are Payletter's, checked before storing."""

    amount: StrictInt = Field(description="Whole won.")
    taxfree_amount: StrictInt | None = None
    tax_amount: StrictInt | None = None
    autopay_flag: YesNo | None = None
    keyin_flag: YesNo | None = None
    expire_date: str | None = None
    expire_time: str | None = None
    disposable_cup_deposit: StrictInt | None = None


class IntentOrderCreate(BaseModel):
    """An order from the shop's frontend: the backend's signed intent, and the buyer's pick."""

    model_config = ConfigDict(extra="forbid")

    intent: str = Field(min_length=1, max_length=8192,
                        description="pli1.<payload>.<signature>, signed by the shop's backend")
    pgcode: str | None = Field(default=None, max_length=20,
                               description="The buyer's method, when the intent allows several")


class TransitionOut(Answer):
    model_config = ConfigDict(from_attributes=True)

    from_status: str
    to_status: str
    event: str
    reason: str | None
    delivery_id: int | None
    created_at: datetime


class OrderOut(Answer):
    model_config = ConfigDict(from_attributes=True)

    order_no: str
    client_id: str
    pgcode: str
    status: str
    amount: int
    taxfree_amount: int
    tax_amount: int
    cancelled_amount: int
    disposable_cup_deposit: int | None
    product_name: str
    user_id: str
    user_name: str | None
    service_name: str | None
    custom_parameter: str | None
    token: str | None
    online_url: str | None
    mobile_url: str | None
    tid: str | None
    cid: str | None
    paid_pgcode: str | None
    pay_info: str | None
    card_info: str | None
    install_month: int | None
    transaction_date: datetime | None
    paid_at: datetime | None
    payment_details: dict[str, Any]
    review_reason: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


_HISTORY = "Empty in a write's answer: GET /orders/{order_no} has the order's history"


class OrderViewOut(OrderOut):
    """An order as a write answers it (created, charged, refunded): its fields
    (`app.orders.service.order_detail`)."""

    deliveries: list[DeliveryOut] = Field(description=_HISTORY)
    transitions: list[TransitionOut] = Field(description=_HISTORY)


class RefundOut(Answer):
    """One refund of an order (`app.refunds.service.refund_view`)."""

    id: int
    kind: Literal["full", "partial"]
    amount: int
    taxfree_amount: int
    tax_amount: int | None
    status: Literal["requested", "done", "failed", "unknown"] = Field(
        description="requested: sent, not confirmed yet; unknown: Payletter never answered "
                    "(the status sync settles it)")
    cid: str | None
    cancel_date: datetime | None
    error: str | None
    requested_by: str
    created_at: datetime


class OrderDetailOut(OrderOut):
    """GET /orders/{order_no}: the order with every delivery, state change, refund and audit
    entry on record (`app.orders.history.order_with_history`)."""

    deliveries: list[DeliveryOut]
    transitions: list[TransitionOut]
    refunds: list[RefundOut]
    audit: list[AuditEntryOut]


class OrderTotalsOut(Answer):
    """Over every order the filters match, not only this page."""

    count: int
    amount: int
    refunded: int


class OrderPageOut(Answer):
    """GET /orders: one keyset page (`app.orders.queries.orders_page`)."""

    items: list[OrderOut]
    next_cursor: str | None = Field(description="The next page's `cursor`; null on the last")
    sort: str
    filters: dict[str, str] = Field(description="The filters applied, as given")
    totals: OrderTotalsOut | SkipJsonSchema[None] = Field(
        default=None, description="Absent with `totals=false`")


class SyncOut(Answer):
    """POST /orders/{order_no}/sync: what asking Payletter changed."""

    order_no: str
    status_before: str
    status: str
    actions: list[str] = Field(description="paid, already_paid, abandoned, unchanged, "
                                           "refund_done, refund_failed, … or nothing to sync")


class ReceiptUrlOut(Answer):
    """A page Payletter renders: the cash receipt, or the transaction confirmation."""

    receipt_url: str
