"""An order with its whole history: what GET /orders/{order_no} answers, and the one timeline
the ops page and `orders show` both show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.kit.korea_time import KST
from app.models import AuditEntry, Delivery, Order, OrderTransition, OutboxEvent, Refund
from app.ops.audit import audit_view
from app.ops.repository import AuditRepository
from app.orders.repository import OrderRepository
from app.orders.service import order_detail
from app.payments.repository import DeliveryRepository
from app.refunds.repository import RefundRepository
from app.refunds.service import refund_view
from app.webhooks.repository import OutboxRepository

EVENTS_SHOWN = 500  # the shop events listed on a timeline, newest first


@dataclass(frozen=True)
class OrderRecords:
    """Every record about one order."""

    order: Order
    deliveries: Sequence[Delivery]
    transitions: Sequence[OrderTransition]
    refunds: Sequence[Refund]
    audit: Sequence[AuditEntry]
    events: Sequence[OutboxEvent]  # the shop's webhook events; empty unless asked for


async def order_records(session: AsyncSession, order_no: str, *, events: bool = True
                        ) -> OrderRecords:
    """The order and everything recorded about it (NotFound if there is no such order)."""
    orders = OrderRepository(session)
    order = await orders.get_by_order_no(order_no)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    return OrderRecords(
        order,
        await DeliveryRepository(session).for_order(order.id),
        await orders.transitions(order.id),
        await RefundRepository(session).for_order(order.id),
        await AuditRepository(session).for_order(order.id),
        await OutboxRepository(session).list(order_no=order.order_no, limit=EVENTS_SHOWN)
        if events else ())


def history_view(records: OrderRecords) -> dict[str, Any]:
    """The order's fields, then every delivery, state change, refund and audit entry."""
    view = order_detail(records.order, records.deliveries, records.transitions)
    view["refunds"] = [refund_view(r) for r in records.refunds]
    view["audit"] = [audit_view(a) for a in records.audit]
    return view


async def order_with_history(session: AsyncSession, order_no: str) -> dict[str, Any]:
    """What GET /orders/{order_no} answers (`history_view`)."""
    return history_view(await order_records(session, order_no, events=False))


# -- the timeline ---------------------------------------------------------------------------

Record = Order | Delivery | OrderTransition | Refund | AuditEntry | OutboxEvent


@dataclass(frozen=True)
class TimelineEntry:
    """One line of an order's history; `record` is the row it shows."""

    at: datetime  # when it happened (the sort key)
    rank: int  # ties: creation, delivery, state change, refund, audit, event
    kind: str  # created, delivery, state, refund, audit, event
    record: Record
    text: str  # the entry in one line of plain text (the ops page draws its own HTML)
    shown: datetime  # the time on record (a delivery's differs from `at`, see `timeline`)

    @property
    def id(self) -> int:
        return self.record.id


def timeline(records: OrderRecords) -> list[TimelineEntry]:
    """One history of the order, oldest first: every record about it, merged by time.

    A delivery row is written once it has been processed, so its `received_at` is a moment
    after the state change it caused: it is placed at that change, just before it.
    """
    o = records.order
    caused = {t.delivery_id: t.created_at for t in records.transitions
              if t.delivery_id is not None}
    entries = [TimelineEntry(o.created_at, 0, "created", o, f"order created: {_won(o.amount)} "
                             f"by {o.pgcode} for {o.user_id}", o.created_at)]
    entries += [TimelineEntry(min(d.received_at, caused.get(d.id, d.received_at)), 1,
                              "delivery", d, _delivery_text(d), d.received_at)
                for d in records.deliveries]
    entries += [TimelineEntry(t.created_at, 2, "state", t, _state_text(t), t.created_at)
                for t in records.transitions]
    entries += [TimelineEntry(r.created_at, 3, "refund", r, _refund_text(r), r.created_at)
                for r in records.refunds]
    entries += [TimelineEntry(a.at, 4, "audit", a, _audit_text(a), a.at) for a in records.audit]
    entries += [TimelineEntry(e.created_at, 5, "event", e, _event_text(e), e.created_at)
                for e in records.events]
    return sorted(entries, key=lambda x: (x.at, x.rank, x.id))


def _won(amount: int) -> str:
    return f"{amount:,} won"


def _kst(value: datetime) -> str:
    return value.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")


def _delivery_text(d: Delivery) -> str:
    text = (f"#{d.id} {d.kind} from {d.source_addr}: {d.outcome} "
            f"({d.verification}, code {d.response_code})")
    text += f" tid {d.tid}" if d.tid else ""
    return text + (f": {d.detail}" if d.detail else "")


def _state_text(t: OrderTransition) -> str:
    text = f"{t.from_status} → {t.to_status} ({t.event})"
    text += f": {t.reason}" if t.reason else ""
    return text + (f" [delivery #{t.delivery_id}]" if t.delivery_id else "")


def _refund_text(r: Refund) -> str:
    text = f"#{r.id} {r.kind} {_won(r.amount)}: {r.status}"
    text += f", cid {r.cid}" if r.cid else ""
    text += f", by {r.requested_by}" if r.requested_by else ""
    return text + (f": {r.error}" if r.error else "")


def _audit_text(a: AuditEntry) -> str:
    detail = a.detail if isinstance(a.detail, dict) else {}
    facts = [f"{k}={v}" for k, v in detail.items()
             if isinstance(v, str | int | float | bool) and k != "order_no"]
    return f"{a.actor} {a.action}: {a.outcome}" + (f" ({', '.join(facts)})" if facts else "")


def _event_text(e: OutboxEvent) -> str:
    text = f"shop event {e.type} {e.event_id}: {e.status}, {e.attempts} attempt(s)"
    text += f", delivered {_kst(e.delivered_at)}" if e.delivered_at else ""
    return text + (f": {e.last_error}" if e.last_error else "")
