"""The /_sim/ control API: what tests and the demo use to drive and inspect the simulator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from simulator import checkout
from simulator.callbacks import CallbackEngine
from simulator.clock import format_kst
from simulator.faults import FaultsPatch
from simulator.results import DEFAULT_DECLINE_CODE, DEFAULT_DECLINE_MESSAGE
from simulator.state import Simulator, sim
from simulator.store import Billkey, CallbackAttempt, Payment

router = APIRouter(prefix="/_sim")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def payment_view(payment: Payment) -> dict[str, Any]:
    account = payment.account
    return {
        "token": payment.token,
        "client_id": payment.client_id,
        "order_no": payment.order_no,
        "pgcode": payment.pgcode,
        "result_pgcode": payment.result_pgcode,
        "origin": payment.origin,
        "phase": payment.phase.value,
        "status_code": int(payment.status_code),
        "tid": payment.tid,
        "cid": payment.cid,
        "user_id": payment.user_id,
        "user_name": payment.user_name,
        "service_name": payment.service_name,
        "product_name": payment.product_name,
        "custom_parameter": payment.custom_parameter,
        "amount": payment.amount,
        "taxfree_amount": payment.taxfree_amount,
        "tax_amount": payment.tax_amount,
        "disposable_cup_deposit": payment.disposable_cup_deposit,
        "cancelled_amount": payment.cancelled_amount,
        "remaining_amount": payment.remaining_amount,
        "autopay_flag": payment.autopay_flag,
        "billkey": payment.billkey,  # the simulator shows it; the product must never log it
        "return_url": payment.return_url,
        "callback_url": payment.callback_url,
        "cancel_url": payment.cancel_url,
        "location": payment.location,
        "created_at": _iso(payment.created_at),
        "approved_at": _iso(payment.approved_at),
        "transaction_date": format_kst(payment.approved_at) if payment.approved_at else "",
        "account": None if account is None else {
            "account_no": account.account_no,
            "bank_code": account.bank_code,
            "bank_name": account.bank_name,
            "account_holder": account.account_holder,
            "account_name": account.account_name,
            "issue_tid": account.issue_tid,
            "expire_date": account.expire_date,
            "expire_time": account.expire_time,
            "deposited_at": _iso(account.deposited_at),
        },
        "cancels": [
            {
                "cid": c.cid,
                "kind": c.kind,
                "amount": c.amount,
                "taxfree_amount": c.taxfree_amount,
                "tax_amount": c.tax_amount,
                "cancel_date": format_kst(c.cancelled_at),
                "cancelled_at": c.cancelled_at.isoformat(),
            }
            for c in payment.cancels
        ],
        "return_fields": payment.return_fields,
        "cash_receipt": payment.cash_receipt or None,
    }


def attempt_view(attempt: CallbackAttempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "token": attempt.token,
        "order_no": attempt.order_no,
        "tid": attempt.tid,
        "attempt": attempt.attempt,
        "url": attempt.url,
        "sent_at": attempt.sent_at.isoformat(),
        "source_address": attempt.source_address,
        "response_status": attempt.response_status,
        "response_body": attempt.response_body,
        "outcome": attempt.outcome,
        "error": attempt.error,
        "elapsed_ms": attempt.elapsed_ms,
    }


def billkey_view(billkey: Billkey) -> dict[str, Any]:
    return {
        "billkey": billkey.billkey,
        "client_id": billkey.client_id,
        "user_id": billkey.user_id,
        "pgcode": billkey.pgcode,
        "amount": billkey.amount,
        "first_paid_at": billkey.first_paid_at.isoformat(),
        "charges": [c.isoformat() for c in billkey.charges],
        "revoked": billkey.revoked,
    }


def _payment_or_404(simulator: Simulator, token: int) -> Payment:
    payment = simulator.store.payments.get(token)
    if payment is None:
        raise HTTPException(404, f"no payment with token {token}")
    return payment


def _window_payment(simulator: Simulator, token: int) -> Payment:
    payment = _payment_or_404(simulator, token)
    if payment.origin != "window":
        raise HTTPException(409, "an autopay charge has no payment window")
    return payment


@router.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@router.post("/reset")
async def reset(request: Request) -> dict[str, bool]:
    await sim(request).reset()
    return {"ok": True}


@router.get("/payments")
async def list_payments(request: Request) -> list[dict[str, Any]]:
    return [payment_view(p) for p in sim(request).store.payments.values()]


@router.get("/payments/{token}")
async def get_payment(token: int, request: Request) -> dict[str, Any]:
    return payment_view(_payment_or_404(sim(request), token))


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result_pgcode: str | None = Field(None, description="naverpoint, smilecash ...")
    amount: int | None = Field(None, ge=1, description="voucher requested without amount")


class DeclineBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(DEFAULT_DECLINE_CODE, min_length=1)
    message: str = DEFAULT_DECLINE_MESSAGE


@router.post("/payments/{token}/approve")
async def approve(token: int, request: Request, body: ApproveBody | None = None) -> dict[str, Any]:
    simulator = sim(request)
    payment = _window_payment(simulator, token)
    body = body or ApproveBody()
    try:
        result = await checkout.approve_and_notify(
            simulator, payment, result_pgcode=body.result_pgcode, amount=body.amount
        )
    except checkout.WindowConflict as error:
        raise HTTPException(409, str(error)) from None
    return {"return_url": result.return_url, "return_fields": result.return_fields}


@router.post("/payments/{token}/decline")
async def decline(token: int, request: Request, body: DeclineBody | None = None) -> dict[str, Any]:
    payment = _window_payment(sim(request), token)
    body = body or DeclineBody()
    try:
        result = checkout.decline(payment, body.code, body.message)
    except checkout.WindowConflict as error:
        raise HTTPException(409, str(error)) from None
    return {"return_url": result.return_url, "return_fields": result.return_fields}


@router.post("/payments/{token}/cancel")
async def cancel(token: int, request: Request) -> dict[str, Any]:
    payment = _window_payment(sim(request), token)
    try:
        cancel_url = checkout.abandon(payment)
    except checkout.WindowConflict as error:
        raise HTTPException(409, str(error)) from None
    # null: this method never sends the buyer to cancel_url (or none was given).
    return {"cancel_url": cancel_url}


@router.post("/virtualaccount/{tid}/deposit")
async def deposit(tid: str, request: Request) -> dict[str, Any]:
    simulator = sim(request)
    payment = simulator.store.by_tid.get(tid)
    if payment is None:
        raise HTTPException(404, f"no transaction with tid {tid}")
    try:
        checkout.deposit(simulator, payment)
    except checkout.WindowConflict as error:
        raise HTTPException(409, str(error)) from None
    simulator.send_callback(payment)
    return payment_view(payment)


@router.get("/callbacks")
async def callbacks(
    request: Request, order_no: str | None = None, token: int | None = None
) -> list[dict[str, Any]]:
    return [attempt_view(a) for a in sim(request).store.attempts(order_no=order_no, token=token)]


class SendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    copies: int = Field(1, ge=1, le=100)
    concurrent: bool = True


@router.post("/callbacks/{token}/send")
async def send_callback(
    token: int, request: Request, body: SendBody | None = None
) -> dict[str, Any]:
    """Send now (ignoring drop faults), `copies` at once; answers after each first attempt."""
    simulator = sim(request)
    payment = _payment_or_404(simulator, token)
    if not payment.sends_callback:
        raise HTTPException(409, "this payment has no callback to send (not paid via the window)")
    body = body or SendBody()
    if body.concurrent:
        deliveries = simulator.send_callback(
            payment, copies=body.copies, ignore_drops=True, delay=0
        )
        await CallbackEngine.wait_first_attempts(deliveries)
    else:
        deliveries = []
        for _ in range(body.copies):
            batch = simulator.send_callback(payment, copies=1, ignore_drops=True, delay=0)
            await CallbackEngine.wait_first_attempts(batch)
            deliveries += batch
    ids = {d.id for d in deliveries}
    first = [a for a in simulator.store.callback_log if a.delivery_id in ids and a.attempt == 1]
    return {"delivery_ids": sorted(ids), "first_attempts": [attempt_view(a) for a in first]}


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return sim(request).faults.model_dump()


@router.post("/faults")
async def merge_faults(patch: FaultsPatch, request: Request) -> dict[str, Any]:
    simulator = sim(request)
    patch.apply_to(simulator.faults)
    return simulator.faults.model_dump()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    simulator = sim(request)
    simulator.faults = type(simulator.faults)()
    return simulator.faults.model_dump()


class ClockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: datetime | None
    ticking: bool = Field(False, description="keep running from `now` instead of standing still")


def _clock_view(simulator: Simulator) -> dict[str, Any]:
    now = simulator.clock.now()
    return {
        "now": now.isoformat(),
        "kst": format_kst(now),
        "real": simulator.clock.is_real,
        "ticking": simulator.clock.is_ticking,
    }


@router.get("/clock")
async def get_clock(request: Request) -> dict[str, Any]:
    return _clock_view(sim(request))


@router.post("/clock")
async def set_clock(body: ClockBody, request: Request) -> dict[str, Any]:
    simulator = sim(request)
    if body.now is not None and body.now.utcoffset() is None:
        raise HTTPException(422, "now needs a UTC offset, e.g. 2024-05-01T10:00:00+09:00")
    simulator.clock.set(body.now, ticking=body.ticking)
    return _clock_view(simulator)


@router.get("/billkeys")
async def list_billkeys(request: Request) -> list[dict[str, Any]]:
    return [billkey_view(b) for b in sim(request).store.billkeys.values()]


@router.post("/billkeys/{billkey}/revoke")
async def revoke_billkey(billkey: str, request: Request) -> dict[str, Any]:
    record = sim(request).store.billkeys.get(billkey)
    if record is None:
        raise HTTPException(404, "unknown billkey")
    record.revoked = True
    return billkey_view(record)
