"""Cancels and partial cancels: checked against the method's rules, stored, then sent.

Each refund is a row of its own (requested → done / failed, or unknown after a timeout).
The row is committed before Payletter is called, and at most one refund per order may be
in flight (a partial unique index), so a refund is never sent twice: a second request
waits for the order's row lock, then sees the first one. An unknown refund is settled by
the status sync (`app.payments.sync`), which looks for the cancel in Payletter's list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import commit_before_call, utcnow
from app.errors import Conflict, InvalidRequest, NotFound
from app.gateway import Gateway
from app.kit.korea_time import KST
from app.models import Order, Refund
from app.ops.audit import audit
from app.orders.repository import OrderRepository
from app.orders.service import order_detail
from app.orders.states import OrderEvent, OrderStatus
from app.orders.transitions import transition
from app.payletter.errors import (
    BusinessRuleError,
    PayletterAPIError,
    PayletterError,
    PayletterServerError,
    PayletterTransportError,
)
from app.payletter.methods import METHODS, CancelWindow
from app.payletter.models import CancelRequest, CancelResult, PartialCancelRequest
from app.refunds.repository import RefundRepository

REFUNDABLE = {OrderStatus.PAID, OrderStatus.PARTIALLY_CANCELLED}


@dataclass(frozen=True)
class RefundOutcome:
    """A refund as it stands after the request, with its order. `sent` is False when the
    cancel never reached Payletter (so it failed for sure, and nothing happened there)."""

    refund: dict[str, Any]
    order: dict[str, Any]
    message: str | None = None
    sent: bool = True

    @property
    def accepted(self) -> bool:
        """Payletter took the cancel (done, or requested and still to be confirmed)."""
        return self.refund["status"] in ("done", "requested")

    @property
    def body(self) -> dict[str, Any]:
        body = {"refund": self.refund, "order": self.order}
        return body | ({"message": self.message} if self.message else {})


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id, "kind": refund.kind, "amount": refund.amount,
        "taxfree_amount": refund.taxfree_amount, "tax_amount": refund.tax_amount,
        "status": refund.status, "cid": refund.cid,
        "cancel_date": refund.cancel_date.isoformat() if refund.cancel_date else None,
        "error": refund.error, "requested_by": refund.requested_by,
        "created_at": refund.created_at.isoformat(),
    }


def describe_window(window: CancelWindow) -> str:
    return {"never": "never", "same_day": "the day of payment",
            "same_month": "the month of payment"}.get(window.kind, f"D+{window.days}")


def check_refundable(order: Order, amount: int | None, taxfree: int | None, now: datetime
                     ) -> tuple[int, int, bool]:
    """Apply Payletter's rules for this method; (amount, taxfree, partial) or InvalidRequest."""
    if OrderStatus(order.status) not in REFUNDABLE:
        raise Conflict(f"order is {order.status}: only paid orders can be refunded")
    rule = METHODS.get(order.pgcode)
    if rule is None or not rule.cancel:
        raise InvalidRequest(f"{order.pgcode} payments can't be cancelled through Payletter "
                             "(rule: not cancellable); refund the buyer another way")
    window = rule.cancel_window_for(order.paid_pgcode or order.pgcode)
    paid_at = order.transaction_date or order.paid_at
    assert paid_at is not None
    if not window.is_open(paid_at, now):
        deadline = window.deadline(paid_at)
        closed = f" (closed {deadline.astimezone(KST):%Y-%m-%d %H:%M} KST)" if deadline else ""
        raise InvalidRequest(f"the cancel window for {order.pgcode} is "
                             f"{describe_window(window)}{closed}", field="amount")
    remaining = order.amount - order.cancelled_amount
    refund = remaining if amount is None else amount
    if refund <= 0 or refund > remaining:
        raise InvalidRequest(f"amount must be between 1 and the remaining {remaining} won",
                             field="amount")
    partial = refund < order.amount  # the rest of a partly refunded order is partial too
    if partial and not rule.partial_cancel:
        raise InvalidRequest(f"{order.pgcode} does not allow partial cancels (rule: "
                             "partial cancel not allowed); cancel the full amount",
                             field="amount")
    tax_free = (order.taxfree_amount if order.taxfree_amount == order.amount else 0
                ) if taxfree is None else taxfree
    if not 0 <= tax_free <= min(refund, order.taxfree_amount):
        raise InvalidRequest("taxfree_amount must be between 0 and the order's tax-free part "
                             "and not above the amount", field="taxfree_amount")
    return refund, tax_free, partial


def check_tax(refund: int, taxfree: int, tax_amount: int | None) -> None:
    if tax_amount is not None and tax_amount > refund - taxfree:
        raise InvalidRequest("tax_amount can't exceed the taxable part of the refund",
                             field="tax_amount")


async def cancel_order(
    session: AsyncSession,
    gateway: Gateway,
    order_no: str,
    *,
    amount: int | None,
    taxfree_amount: int | None,
    tax_amount: int | None,
    idempotency_key: str | None,
    actor: str,
    now: datetime | None = None,
) -> RefundOutcome:
    orders, refunds = OrderRepository(session), RefundRepository(session)
    order = await orders.lock_by_order_no(order_no)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    if idempotency_key:
        existing = await refunds.by_idempotency_key(order.id, idempotency_key)
        if existing is not None:
            if amount is not None and existing.amount != amount:
                raise InvalidRequest("Idempotency-Key was already used for another amount",
                                     field="Idempotency-Key")
            return _outcome(existing, order)
    in_flight = await refunds.in_flight_for(order.id)
    if in_flight is not None:
        raise Conflict(f"refund {in_flight.id} for this order is still {in_flight.status}; "
                       "wait for it or sync the order first")
    value, taxfree, partial = check_refundable(order, amount, taxfree_amount, now or utcnow())
    check_tax(value, taxfree, tax_amount)
    refund = await refunds.add(Refund(
        order_id=order.id, kind="partial" if partial else "full", amount=value,
        taxfree_amount=taxfree, tax_amount=tax_amount, status="requested",
        idempotency_key=idempotency_key, requested_by=actor, created_at=utcnow(),
        updated_at=utcnow()))
    refund_id, order_id = refund.id, order.id
    # The refund exists (and blocks a second one) before anything can happen.
    await commit_before_call(session)

    try:
        result = await _send(gateway, order, refund)
    except PayletterError as exc:
        return await _settle_error(session, refund_id, order_id, exc, actor)
    order = await _locked_order(orders, order_id)
    refund = await _locked_refund(refunds, refund_id)
    await complete_refund(session, order, refund, cid=result.cid,
                          cancel_date=result.cancel_date, actor=actor, evidence="cancel API")
    return _outcome(refund, order)


async def _send(gateway: Gateway, order: Order, refund: Refund) -> CancelResult:
    assert order.tid is not None
    ip_addr = gateway.settings.payletter_request_ip
    if refund.kind == "full":
        return await gateway.payletter.cancel(CancelRequest(
            pgcode=order.paid_pgcode or order.pgcode, client_id=order.client_id,
            user_id=order.user_id, tid=order.tid, ip_addr=ip_addr))
    return await gateway.payletter.cancel_partial(PartialCancelRequest(
        pgcode=order.paid_pgcode or order.pgcode, client_id=order.client_id,
        user_id=order.user_id, tid=order.tid, amount=refund.amount,
        taxfree_amount=refund.taxfree_amount, tax_amount=refund.tax_amount, ip_addr=ip_addr))


async def complete_refund(session: AsyncSession, order: Order, refund: Refund, *, cid: str,
                          cancel_date: datetime | None, actor: str, evidence: str) -> None:
    """Payletter confirmed the cancel: the refund is done, the order's totals and state move."""
    refund.status, refund.cid, refund.cancel_date, refund.error = "done", cid, cancel_date, None
    order.cancelled_amount += refund.amount
    event = (OrderEvent.REFUNDED if order.cancelled_amount >= order.amount
             else OrderEvent.PARTIALLY_REFUNDED)
    await transition(session, order, event,
                     reason=f"refund {refund.id}: {refund.amount} won ({evidence}, cid {cid})")
    await audit(session, actor=actor, action=f"{refund.kind}_cancel", outcome="done",
                order=order, refund_id=refund.id, amount=refund.amount, cid=cid,
                evidence=evidence)


async def _settle_error(session: AsyncSession, refund_id: int, order_id: int,
                        exc: PayletterError, actor: str) -> RefundOutcome:
    refunds = RefundRepository(session)
    refund = await _locked_refund(refunds, refund_id)
    order = await _locked_order(OrderRepository(session), order_id)
    reached = not isinstance(exc, PayletterTransportError) or exc.may_have_reached_payletter
    if isinstance(exc, BusinessRuleError) or (isinstance(exc, PayletterAPIError)
                                              and not isinstance(exc, PayletterServerError)):
        refund.status, outcome = "failed", "refused"
    elif reached:
        # Payletter may have cancelled: never guess, never send again. The sync decides.
        refund.status, outcome = "unknown", "unknown"
    else:
        refund.status, outcome = "failed", "not_sent"
    refund.error = str(exc)
    await session.flush()
    await audit(session, actor=actor, action=f"{refund.kind}_cancel", outcome=outcome,
                order=order, refund_id=refund.id, amount=refund.amount, error=str(exc))
    return _outcome(refund, order, sent=outcome != "not_sent")


def _outcome(refund: Refund, order: Order, *, sent: bool = True) -> RefundOutcome:
    message = None
    if refund.status == "unknown":
        message = ("Payletter did not answer; whether the cancel went through is unknown. "
                   "It is never resent: the status sync settles it.")
    elif refund.status == "failed":
        message = f"the cancel failed: {refund.error}"
    return RefundOutcome(refund_view(refund), order_detail(order), message, sent)


async def _locked_order(orders: OrderRepository, order_id: int) -> Order:
    order = await orders.lock_by_id(order_id)
    assert order is not None
    return order


async def _locked_refund(refunds: RefundRepository, refund_id: int) -> Refund:
    refund = await refunds.lock(refund_id)
    assert refund is not None
    return refund
