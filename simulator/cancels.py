"""payments/cancel and payments/cancel/partial, judged by the per-pgcode rules."""

from __future__ import annotations

from simulator.config import Merchant
from simulator.errors import BizCode, business, forbidden
from simulator.state import Simulator
from simulator.store import CancelKind, CancelRecord, Payment
from simulator.validation import CancelRequest


def find_payment(sim: Simulator, merchant: Merchant, tid: str) -> Payment:
    payment = sim.store.by_tid.get(tid)
    if payment is None:
        raise business(BizCode.TID_NOT_FOUND, f"no transaction with tid {tid}")
    if payment.client_id != merchant.client_id:
        raise forbidden()  # another merchant's transaction
    return payment


def _check_cancellable(
    sim: Simulator, payment: Payment, request: CancelRequest, kind: CancelKind
) -> None:
    rules = payment.rules
    if payment.user_id != request.user_id:
        raise business(BizCode.USER_MISMATCH, "user_id does not match the transaction")
    if request.pgcode and not rules.answers_to(request.pgcode):
        raise business(
            BizCode.PGCODE_MISMATCH,
            f"pgcode {request.pgcode} does not match the transaction ({payment.reported_pgcode})",
        )
    if not rules.cancellable:
        raise business(BizCode.NOT_CANCELLABLE, f"{rules.pgcode} payments cannot be cancelled")
    if not payment.paid:
        raise business(BizCode.NOT_APPROVED, "the transaction has no approved payment to cancel")
    if payment.fully_cancelled:
        raise business(BizCode.ALREADY_CANCELLED, "the transaction is already cancelled")
    if kind == "partial" and not rules.partial_cancel:
        raise business(
            BizCode.PARTIAL_CANCEL_NOT_ALLOWED,
            f"{rules.pgcode} payments cannot be partially cancelled",
        )
    window = rules.window_for(payment.reported_pgcode)
    assert payment.approved_at is not None
    if not window.allows(payment.approved_at, sim.clock.now()):
        raise business(
            BizCode.CANCEL_WINDOW_PASSED,
            f"the cancel window for {payment.reported_pgcode} ({window.describe()}) has passed",
        )


def cancel(
    sim: Simulator, merchant: Merchant, request: CancelRequest
) -> tuple[Payment, CancelRecord]:
    """Cancel whatever is left of the payment (all of it, or the rest after partial cancels)."""
    payment = find_payment(sim, merchant, request.tid)
    _check_cancellable(sim, payment, request, "full")
    cancelled_taxfree = sum(c.taxfree_amount for c in payment.cancels)
    cancelled_tax = sum(c.tax_amount for c in payment.cancels)
    return payment, _record(
        sim, payment, "full", payment.remaining_amount,
        max(payment.taxfree_amount - cancelled_taxfree, 0),
        max(payment.tax_amount - cancelled_tax, 0),
    )


def cancel_partial(
    sim: Simulator, merchant: Merchant, request: CancelRequest
) -> tuple[Payment, CancelRecord]:
    payment = find_payment(sim, merchant, request.tid)
    _check_cancellable(sim, payment, request, "partial")
    # The disposable cup deposit cannot be partially cancelled: it stays for a full cancel.
    partially_cancellable = payment.remaining_amount - payment.disposable_cup_deposit
    if request.amount > partially_cancellable:
        raise business(
            BizCode.AMOUNT_EXCEEDS_REMAINING,
            f"amount {request.amount} exceeds the partially cancellable remainder "
            f"{max(partially_cancellable, 0)}",
        )
    return payment, _record(
        sim, payment, "partial", request.amount, request.taxfree_amount, request.tax_amount
    )


def _record(
    sim: Simulator, payment: Payment, kind: CancelKind, amount: int, taxfree: int, tax: int
) -> CancelRecord:
    now = sim.clock.now()
    record = CancelRecord(
        cid=sim.store.new_cid(now), kind=kind, amount=amount,
        taxfree_amount=taxfree, tax_amount=tax, cancelled_at=now,
    )
    payment.cancels.append(record)
    return record
