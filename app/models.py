"""The tables. Column names follow Payletter's field names so SQL reads like the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.orders.states import OrderStatus

# BIGINT on PostgreSQL; INTEGER on SQLite so it is the rowid alias and autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")
Money = BigInteger


def _one_of(column: str, *values: str) -> CheckConstraint:
    """`column IN ('a', 'b', …)`, named `<column>_valid`."""
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        _one_of("status", *(status.value for status in OrderStatus)),
        CheckConstraint("amount >= 0 AND taxfree_amount >= 0 AND tax_amount >= 0", name="money"),
        CheckConstraint("cancelled_amount >= 0 AND cancelled_amount <= amount", name="refunds"),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_user_id", "user_id"),
        # Keyset pages of the order table (GET /orders, the ops page, exports).
        Index("ix_orders_created_at_id", "created_at", "id"),
        Index("ix_orders_paid_at_id", "paid_at", "id"),
        Index("ix_orders_amount_id", "amount", "id"),
        Index("ix_orders_pgcode_created_at", "pgcode", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), unique=True)
    client_id: Mapped[str] = mapped_column(String(20))
    pgcode: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.CREATED.value)

    amount: Mapped[int] = mapped_column(Money)
    taxfree_amount: Mapped[int] = mapped_column(Money, default=0)
    tax_amount: Mapped[int] = mapped_column(Money)
    disposable_cup_deposit: Mapped[int | None] = mapped_column(Money)
    cancelled_amount: Mapped[int] = mapped_column(Money, default=0)

    product_name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[str] = mapped_column(String(50))
    user_name: Mapped[str | None] = mapped_column(String(20))
    service_name: Mapped[str | None] = mapped_column(String(20))
    custom_parameter: Mapped[str | None] = mapped_column(String(1024))
    email_flag: Mapped[str | None] = mapped_column(String(1))
    email_addr: Mapped[str | None] = mapped_column(String(100))
    autopay_flag: Mapped[str | None] = mapped_column(String(1))
    receipt_flag: Mapped[str | None] = mapped_column(String(1))
    # The rest of the request as sent (flags, app URLs, VA expiry), for the audit trail.
    request_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    # The payment window Payletter issued.
    token: Mapped[str | None] = mapped_column(String(40))
    online_url: Mapped[str | None] = mapped_column(String(512))
    mobile_url: Mapped[str | None] = mapped_column(String(512))

    # The verified result.
    tid: Mapped[str | None] = mapped_column(String(40), unique=True)
    cid: Mapped[str | None] = mapped_column(String(64))
    paid_pgcode: Mapped[str | None] = mapped_column(String(20))
    pay_info: Mapped[str | None] = mapped_column(String(256))
    card_info: Mapped[str | None] = mapped_column(String(32))
    install_month: Mapped[int | None] = mapped_column(Integer)
    transaction_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Virtual account issuance, cash receipt and other method-specific result fields.
    payment_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    review_reason: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """Every inbound return / callback / cancel that passed the address check, as received."""

    __tablename__ = "deliveries"
    __table_args__ = (
        _one_of("kind", "callback", "return", "cancel"),
        Index("ix_deliveries_order_id_received_at", "order_id", "received_at"),
        Index("ix_deliveries_tid", "tid"),
        # Operators' listings (GET /deliveries): by claimed order, and the few answered
        # non-zero among many, newest first.
        Index("ix_deliveries_order_no_id", "order_no", "id"),
        Index("ix_deliveries_unacknowledged_id", "id",
              postgresql_where=text("response_code <> 0"),
              sqlite_where=text("response_code <> 0")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source_addr: Mapped[str] = mapped_column(String(64))
    peer_addr: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(128))
    raw_body: Mapped[str] = mapped_column(Text)  # whole, or the head of an unsigned one
    # What arrived: its size and SHA-256 (also when raw_body keeps only the head).
    body_bytes: Mapped[int | None] = mapped_column(Integer)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    query_string: Mapped[str | None] = mapped_column(Text)  # the URL's (signed) query
    order_no: Mapped[str | None] = mapped_column(String(64))
    tid: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    # payhash_ok, payhash_bad, payhash_missing, status_confirmed, status_unconfirmed,
    # signature_ok, signature_bad, malformed
    verification: Mapped[str] = mapped_column(String(24))
    # applied, duplicate, needs_review, unknown_order, rejected, ignored, error
    outcome: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int] = mapped_column(Integer)


class OrderTransition(Base):
    """The audit trail of state changes: who moved the order, from where to where, and why."""

    __tablename__ = "order_transitions"
    __table_args__ = (Index("ix_order_transitions_order_id_id", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("deliveries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """One row per (scope, Idempotency-Key): the request's fingerprint and its final answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # While unfinished, the request holding the key owns it until then.
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """An order event for the shop, written in the same transaction as the state change.

    The dispatcher delivers pending events in id order per order: an event is not sent
    while an earlier event of the same order is undelivered.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        _one_of("status", "pending", "delivered", "dead"),
        Index("ix_outbox_events_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_events_order_id_id", "order_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    order_no: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Refund(Base):
    """One cancel or partial cancel: requested → done / failed, or unknown until synced.

    At most one refund per order may be in flight (requested or unknown): a partial unique
    index says so, so two concurrent cancels can never both reach Payletter.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        _one_of("status", "requested", "done", "failed", "unknown"),
        _one_of("kind", "full", "partial"),
        CheckConstraint("amount > 0 AND taxfree_amount >= 0", name="money"),
        UniqueConstraint("order_id", "idempotency_key"),
        Index("uq_refunds_one_in_flight", "order_id", unique=True,
              sqlite_where=text("status IN ('requested', 'unknown')"),
              postgresql_where=text("status IN ('requested', 'unknown')")),
        Index("ix_refunds_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(Money)
    taxfree_amount: Mapped[int] = mapped_column(Money, default=0)
    tax_amount: Mapped[int | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(12), default="requested")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    cid: Mapped[str | None] = mapped_column(String(64))
    cancel_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Billkey(Base):
    """A stored autopay billkey (a credential: never shown in full, never logged)."""

    __tablename__ = "billkeys"
    __table_args__ = (
        _one_of("status", "active", "revoked"),
        Index("ix_billkeys_client_id_user_id", "client_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(50))
    pgcode: Mapped[str] = mapped_column(String(20))
    billkey: Mapped[str] = mapped_column(String(40), unique=True)
    first_order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    first_amount: Mapped[int] = mapped_column(Money)
    first_paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_charged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When Payletter vouched for it: it came in a callback, or a charge with it succeeded.
    # None: only a buyer's return brought it (amount-0 registration).
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def masked(self) -> str:
        return f"…{self.billkey[-4:]}" if len(self.billkey) > 8 else "…"


class AuditEntry(Base):
    """What an operator, the shop or the service itself did, and how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_order_id_id", "order_id", "id"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(16))  # ops, shop, sweeper, reconcile
    action: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"))
    order_no: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ReconciliationRun(Base):
    """One comparison of Payletter's transaction list with our table, for a Korea date."""

    __tablename__ = "reconciliation_runs"
    __table_args__ = (Index("ix_reconciliation_runs_date", "date"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, Korea time
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="running")
    matched: Mapped[int] = mapped_column(Integer, default=0)
    fixed: Mapped[int] = mapped_column(Integer, default=0)
    needs_review: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OpsSession(Base):
    """A signed-in ops page session. Its cookie counts only while this row exists and has
    not expired: signing out deletes it, so a copy of the cookie is refused afterwards."""

    __tablename__ = "ops_sessions"
    __table_args__ = (Index("ix_ops_sessions_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # SHA-256 of the cookie's signed part: the table alone can't be turned into cookies.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    source_addr: Mapped[str | None] = mapped_column(String(64))  # where it signed in from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
