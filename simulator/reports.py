"""The read side: payments/status, payments/transaction/list, receipts."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from simulator.cancels import find_payment
from simulator.clock import format_kst, kst_date
from simulator.config import Merchant
from simulator.errors import BizCode, business
from simulator.state import Simulator
from simulator.store import CancelRecord, Payment
from simulator.validation import CashReceiptRequest, ListQuery, StatusRequest

# transaction list status_code (0:승인, 1:전체취소, 2:부분 취소)
LIST_APPROVED, LIST_CANCELLED, LIST_PARTIALLY_CANCELLED = 0, 1, 2


def status(sim: Simulator, merchant: Merchant, request: StatusRequest) -> dict[str, Any]:
    payment = sim.store.find_by_order(merchant.client_id, request.order_no)
    if payment is None:
        raise business(BizCode.ORDER_NOT_FOUND, f"no payment for order_no {request.order_no}")
    return {
        "code": 0,
        "message": "ok",
        "client_id": payment.client_id,
        "order_no": payment.order_no,
        "token": str(payment.token),  # a string here, as in the vendor's sample
        "tid": payment.tid,
        "status_code": int(payment.status_code),
    }


def _row(
    payment: Payment, status_code: int, amount: int, taxfree: int, tax: int, cancel_date: str
) -> dict[str, Any]:
    assert payment.approved_at is not None
    return {
        "pgcode": payment.reported_pgcode,
        "user_id": payment.user_id,
        "user_name": payment.user_name,
        "tid": payment.tid,
        "cid": payment.cid,
        "amount": amount,
        "taxfree_amount": taxfree,
        "tax_amount": tax,
        "order_no": payment.order_no,
        "product_name": payment.product_name,
        "status_code": status_code,
        "transaction_date": format_kst(payment.approved_at),
        "cancel_date": cancel_date,
    }


def _current_state_row(payment: Payment) -> dict[str, Any]:
    """date_type=transaction: one row per payment, as it stands now."""
    if not payment.cancels:
        return _row(
            payment, LIST_APPROVED, payment.amount, payment.taxfree_amount,
            payment.tax_amount, "",
        )
    # "amount: 취소 상태인 경우 취소 금액" - a cancelled row carries what was cancelled.
    code = LIST_CANCELLED if payment.fully_cancelled else LIST_PARTIALLY_CANCELLED
    return _row(
        payment, code, payment.cancelled_amount,
        sum(c.taxfree_amount for c in payment.cancels),
        sum(c.tax_amount for c in payment.cancels),
        format_kst(payment.cancels[-1].cancelled_at),
    )


def _cancel_row(payment: Payment, record: CancelRecord) -> dict[str, Any]:
    code = LIST_CANCELLED if record.kind == "full" else LIST_PARTIALLY_CANCELLED
    return _row(
        payment, code, record.amount, record.taxfree_amount, record.tax_amount,
        format_kst(record.cancelled_at),
    )


def transaction_list(sim: Simulator, merchant: Merchant, query: ListQuery) -> dict[str, Any]:
    rows: list[tuple[Any, dict[str, Any]]] = []  # (sort key, row)
    for payment in sim.store.payments.values():
        if payment.client_id != merchant.client_id or not payment.paid:
            continue
        if query.pgcode and not payment.rules.answers_to(query.pgcode):
            continue
        assert payment.approved_at is not None
        paid_that_day = kst_date(payment.approved_at) == query.day
        if query.date_type == "transaction":
            if paid_that_day:
                rows.append((payment.approved_at, _current_state_row(payment)))
            continue
        # settle: approvals by payment day, each cancel by its own day.
        if paid_that_day:
            rows.append((payment.approved_at, _row(
                payment, LIST_APPROVED, payment.amount, payment.taxfree_amount,
                payment.tax_amount, "",
            )))
        for record in payment.cancels:
            if kst_date(record.cancelled_at) == query.day:
                rows.append((record.cancelled_at, _cancel_row(payment, record)))
    rows.sort(key=lambda item: item[0])
    return {"total_count": len(rows), "list": [row for _, row in rows]}


def cash_receipt_url(
    sim: Simulator, merchant: Merchant, tid: str, request: CashReceiptRequest
) -> str:
    payment = find_payment(sim, merchant, tid)
    if not payment.rules.cash_receipt:
        raise business(
            BizCode.CASH_RECEIPT_NOT_AVAILABLE,
            f"cash receipts are not available for {payment.pgcode} payments",
        )
    if not payment.paid or payment.fully_cancelled:
        raise business(BizCode.NOT_APPROVED, "the transaction has no approved, uncancelled payment")
    query = urlencode({
        "type": request.type,
        "taxflag": request.tax_flag,
        "returnurl": request.return_url,
        "token": str(payment.token),
    })
    return f"{sim.config.public_url}/receipt/cash/{tid}?{query}"


def receipt_info_url(sim: Simulator, merchant: Merchant, tid: str) -> str:
    payment = find_payment(sim, merchant, tid)
    if not payment.paid:
        raise business(BizCode.NOT_APPROVED, "the transaction has no approved payment")
    return f"{sim.config.public_url}/receipt/info/{tid}?id={receipt_id(tid)}"


def receipt_id(tid: str) -> str:
    """An opaque id in the receipt URL, like the vendor's (not a secret: a simulator)."""
    return hashlib.sha256(f"receipt:{tid}".encode()).hexdigest()[:32]
