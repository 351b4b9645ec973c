"""Status sync: ask Payletter what happened when nobody told us.

- An order still unpaid (no callback came, the buyer never returned) is checked with
  payments/status: approved → paid (through the same checks as a callback), otherwise
  abandoned once it is old enough.
- A refund left "unknown" by a timeout is looked up in the transaction list (settle view,
  which lists cancels by cancel day): found → done; still absent long after → failed.

Every sync writes an audit row with Payletter's answer as evidence. No lock or transaction
is held while Payletter is asked.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import commit_before_call, utcnow
from app.errors import NotFound, UpstreamError
from app.gateway import Gateway
from app.kit.korea_time import KST
from app.models import Order
from app.ops.audit import audit
from app.orders.repository import OrderRepository
from app.orders.states import OrderEvent, OrderStatus
from app.orders.transitions import can_move, transition
from app.payletter.errors import BusinessRuleError, PayletterError
from app.payletter.methods import paid_status_codes
from app.payletter.models import Transaction, TransactionListQuery, parse_payletter_datetime
from app.payments.service import apply_confirmed
from app.refunds.repository import RefundRepository
from app.refunds.service import complete_refund

log = logging.getLogger(__name__)

UNSETTLED = {OrderStatus.CREATED, OrderStatus.PENDING, OrderStatus.AWAITING_DEPOSIT,
             OrderStatus.FAILED, OrderStatus.ABANDONED}
_CANCEL_CLOCK_SKEW = timedelta(minutes=5)


async def sync_order(session: AsyncSession, gateway: Gateway, order_no: str, *, actor: str,
                     now: datetime | None = None) -> dict[str, Any]:
    """Settle what Payletter knows about one order; returns what was done."""
    now = now or utcnow()
    orders = OrderRepository(session)
    order = await orders.get_by_order_no(order_no)
    if order is None:
        raise NotFound(f"no order {order_no!r}")
    before = order.status
    actions: list[str] = []
    for refund in await RefundRepository(session).for_order(order.id):
        if refund.status == "unknown":
            actions.append(await settle_refund(session, gateway, refund.id, actor=actor,
                                               now=now, raise_errors=True))
    order = await orders.get_by_order_no(order_no)
    assert order is not None
    if OrderStatus(order.status) in UNSETTLED:
        actions.append(await sync_payment(session, gateway, order_no, actor=actor, now=now,
                                          raise_errors=True))
    order = await orders.get_by_order_no(order_no)
    assert order is not None
    return {"order_no": order_no, "status_before": before, "status": order.status,
            "actions": actions or ["nothing to sync"]}


async def sync_payment(session: AsyncSession, gateway: Gateway, order_no: str, *, actor: str,
                       now: datetime, raise_errors: bool = False) -> str:
    orders = OrderRepository(session)
    order = await orders.get_by_order_no(order_no)
    assert order is not None
    client_id, pgcode = order.client_id, order.pgcode
    amount, user_id = order.amount, order.user_id
    await commit_before_call(session)
    evidence: dict[str, Any]
    try:
        status = await gateway.payletter.payment_status(client_id, order_no)
        evidence = {"payments/status": status.model_dump(mode="json")}
    except BusinessRuleError as exc:  # Payletter has no payment for this order_no
        status, evidence = None, {"payments/status": f"HTTP 406: {exc.message}"}
    except PayletterError as exc:
        if raise_errors:
            raise UpstreamError(f"payments/status failed: {exc}") from None
        log.warning("sync of %s: payments/status failed: %s", order_no, exc)
        return "payletter_unavailable"

    if status is not None and status.tid and status.status_code in paid_status_codes(pgcode):
        outcome = await apply_confirmed(session, order_no, tid=status.tid, amount=amount,
                                        user_id=user_id, pgcode=None,
                                        verification="status_confirmed")
        action = {"applied": "paid", "duplicate": "already_paid"}.get(outcome.outcome,
                                                                       outcome.outcome)
        order = outcome.order or await orders.lock_by_order_no(order_no)
    else:
        order = await orders.lock_by_order_no(order_no)
        assert order is not None
        action = "unchanged"
        if _expired(order, now, gateway.settings.sync_pending_after_seconds) and can_move(
                order, OrderEvent.EXPIRED):
            code = status.status_code if status is not None else "none"
            await transition(session, order, OrderEvent.EXPIRED,
                             reason=f"sync: Payletter status_code={code}, no payment")
            action = "abandoned"
    if action != "unchanged" or actor != "sweeper":  # the sweeper only records changes
        await audit(session, actor=actor, action="sync", outcome=action, order=order,
                    order_no=order_no, evidence=evidence)
    return action


def _expired(order: Order, now: datetime, pending_after: float) -> bool:
    status = OrderStatus(order.status)
    if status is OrderStatus.AWAITING_DEPOSIT:
        deadline = _account_deadline(order)
        return deadline is not None and now > deadline
    if status in (OrderStatus.CREATED, OrderStatus.PENDING):
        return now - order.updated_at > timedelta(seconds=pending_after)
    return False


def _account_deadline(order: Order) -> datetime | None:
    account = (order.payment_details or {}).get("virtual_account") or {}
    day, hhmm = str(account.get("expire_date", "")), str(account.get("expire_time", "2359"))
    if len(day) != 8 or len(hhmm) != 4 or not (day + hhmm).isdigit():
        return None
    try:
        return parse_payletter_datetime(f"{day}{hhmm}00") + timedelta(minutes=1)
    except ValueError:
        return None


async def settle_refund(session: AsyncSession, gateway: Gateway, refund_id: int, *,
                        actor: str, now: datetime, raise_errors: bool = False) -> str:
    """Find an unknown refund's cancel in Payletter's list: done, failed, or still unknown."""
    refunds, orders = RefundRepository(session), OrderRepository(session)
    refund = await refunds.lock(refund_id)
    if refund is None or refund.status != "unknown":
        return "not_unknown"
    order = await orders.lock_by_id(refund.order_id)
    assert order is not None
    assert order.tid is not None
    client_id, tid, amount, asked_at = order.client_id, order.tid, refund.amount, refund.created_at
    taken = {r.cid for r in await refunds.for_order(order.id) if r.status == "done" and r.cid}
    await commit_before_call(session)
    try:
        rows = await _cancels_listed(gateway, client_id, {_korea_day(asked_at), _korea_day(now)})
    except PayletterError as exc:
        if raise_errors:
            raise UpstreamError(f"payments/transaction/list failed: {exc}") from None
        log.warning("refund %s: transaction list failed: %s", refund_id, exc)
        return "payletter_unavailable"
    match = next((row for row in rows
                  if row.tid == tid and row.status_code in (1, 2) and row.amount == amount
                  and row.cid not in taken and row.cancel_date is not None
                  and row.cancel_date >= asked_at - _CANCEL_CLOCK_SKEW), None)

    refund = await refunds.lock(refund_id)
    order = await orders.lock_by_id(refund.order_id) if refund else None
    if refund is None or order is None or refund.status != "unknown":
        return "not_unknown"
    if match is not None:
        await complete_refund(session, order, refund, cid=match.cid or "",
                              cancel_date=match.cancel_date, actor=actor,
                              evidence=f"transaction list (settle) row {match.model_dump_json()}")
        return "refund_done"
    give_up_after = timedelta(seconds=gateway.settings.refund_unknown_fail_after_seconds)
    if now - refund.updated_at > give_up_after:
        refund.status = "failed"
        refund.error = "Payletter lists no such cancel: it did not happen"
        await audit(session, actor=actor, action=f"{refund.kind}_cancel", outcome="failed",
                    order=order, refund_id=refund.id, evidence="absent from transaction list")
        return "refund_failed"
    return "refund_still_unknown"


async def _cancels_listed(gateway: Gateway, client_id: str, days: set[date]
                          ) -> list[Transaction]:
    rows: list[Transaction] = []
    for day in sorted(days):
        listing = await gateway.payletter.transaction_list(
            TransactionListQuery(client_id=client_id, date=day, date_type="settle"))
        rows.extend(listing.items)
    return rows


def _korea_day(moment: datetime) -> date:
    return moment.astimezone(KST).date()



async def mark_unknown(session: AsyncSession, refund_id: int, *, actor: str) -> bool:
    """A refund stuck in `requested` (its process died mid-call) becomes `unknown`."""
    refunds = RefundRepository(session)
    refund = await refunds.lock(refund_id)
    if refund is None or refund.status != "requested":
        return False
    order = await OrderRepository(session).lock_by_id(refund.order_id)
    refund.status = "unknown"
    refund.error = "the process handling this refund stopped before Payletter answered"
    await audit(session, actor=actor, action=f"{refund.kind}_cancel", outcome="unknown",
                order=order, refund_id=refund.id, reason="stuck in requested")
    return True
