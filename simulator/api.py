"""The nine Payletter API calls (v1.0), field by field as the vendor page describes them.

Order of checks on every call: injected faults, then the key (401), then the body
(406 2000), then whose key it is for which client_id (403), then fields and business
rules (406).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from simulator import autopay, cancels, checkout, reports
from simulator.clock import format_kst
from simulator.config import KeyType, Merchant
from simulator.errors import BizCode, PayletterError, business, forbidden, unauthenticated
from simulator.state import Simulator, sim
from simulator.store import CancelRecord
from simulator.validation import (
    Body,
    parse_autopay_request,
    parse_cancel_request,
    parse_cash_receipt_request,
    parse_list_query,
    parse_partial_cancel_request,
    parse_payment_request,
    parse_status_request,
    text,
)

router = APIRouter(prefix="/v1.0")


async def _before_call(simulator: Simulator, endpoint: str) -> None:
    """Faults first: a broken or slow server is broken or slow for everyone."""
    delay = simulator.faults.api_delay.get(endpoint)
    if delay:
        await asyncio.sleep(delay)
    fault = simulator.faults.take_api_error(endpoint)
    if fault is not None:
        raise PayletterError(fault.status, fault.code, fault.message, shape=fault.shape)


def _key_owner(simulator: Simulator, request: Request) -> tuple[Merchant, KeyType]:
    scheme, _, key = request.headers.get("authorization", "").strip().partition(" ")
    owner = simulator.config.key_owner(key.strip()) if scheme.upper() == "PLKEY" else None
    if owner is None:
        raise unauthenticated()
    return owner


def _authorize(owner: tuple[Merchant, KeyType], needed: KeyType, client_id: str) -> Merchant:
    merchant, key_type = owner
    if key_type is not needed or merchant.client_id != client_id:
        raise forbidden()
    return merchant


async def _json_body(request: Request) -> Body:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise business(BizCode.MALFORMED_BODY, "the request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise business(BizCode.MALFORMED_BODY, "the request body must be a JSON object")
    return data


async def _open_call(
    request: Request, endpoint: str, needed: KeyType, *, from_query: bool = False
) -> tuple[Simulator, Merchant, Body]:
    simulator = sim(request)
    await _before_call(simulator, endpoint)
    owner = _key_owner(simulator, request)
    body: Body = dict(request.query_params) if from_query else await _json_body(request)
    client_id = text(body, "client_id", required=True)
    return simulator, _authorize(owner, needed, client_id), body


def _tid_from_path(tid: str) -> str:
    return text({"tid": tid}, "tid", required=True)


@router.post("/payments/request")
async def payments_request(request: Request) -> JSONResponse:
    simulator, merchant, body = await _open_call(request, "payments/request", KeyType.PAYMENT)
    parsed = parse_payment_request(
        body, zero_amount_registration=merchant.zero_amount_registration
    )
    payment = checkout.open_payment(simulator, parsed)
    return JSONResponse({"token": payment.token, **checkout.window_urls(simulator, payment)})


@router.post("/payments/autopay")
async def payments_autopay(request: Request) -> JSONResponse:
    simulator, merchant, body = await _open_call(request, "payments/autopay", KeyType.PAYMENT)
    payment = autopay.charge(simulator, merchant, parse_autopay_request(body))
    assert payment.approved_at is not None
    return JSONResponse({
        "tid": payment.tid,
        "cid": payment.cid,
        "amount": payment.amount,
        "billkey": payment.billkey,
        "transaction_date": format_kst(payment.approved_at),
    })


def _cancel_answer(tid: str, record: CancelRecord) -> JSONResponse:
    return JSONResponse({
        "tid": tid,
        "cid": record.cid,
        "amount": record.amount,
        "cancel_date": format_kst(record.cancelled_at),
    })


@router.post("/payments/cancel")
async def payments_cancel(request: Request) -> JSONResponse:
    simulator, merchant, body = await _open_call(request, "payments/cancel", KeyType.PAYMENT)
    payment, record = cancels.cancel(simulator, merchant, parse_cancel_request(body))
    return _cancel_answer(payment.tid, record)


@router.post("/payments/cancel/partial")
async def payments_cancel_partial(request: Request) -> JSONResponse:
    simulator, merchant, body = await _open_call(
        request, "payments/cancel/partial", KeyType.PAYMENT
    )
    payment, record = cancels.cancel_partial(
        simulator, merchant, parse_partial_cancel_request(body)
    )
    return _cancel_answer(payment.tid, record)


@router.post("/cashreceipt/issue/{tid}")
async def cashreceipt_issue(tid: str, request: Request) -> JSONResponse:
    simulator, merchant, body = await _open_call(request, "cashreceipt/issue", KeyType.PAYMENT)
    parsed = parse_cash_receipt_request(body)
    url = reports.cash_receipt_url(simulator, merchant, _tid_from_path(tid), parsed)
    return JSONResponse({"receipt_url": url})


@router.get("/payments/transaction/list")
async def transaction_list(request: Request) -> JSONResponse:
    simulator, merchant, query = await _open_call(
        request, "payments/transaction/list", KeyType.SEARCH, from_query=True
    )
    return JSONResponse(reports.transaction_list(simulator, merchant, parse_list_query(query)))


@router.post("/payments/status")
async def payments_status(request: Request) -> JSONResponse:
    simulator, merchant, body = await _open_call(request, "payments/status", KeyType.PAYMENT)
    return JSONResponse(reports.status(simulator, merchant, parse_status_request(body)))


@router.get("/receipt/info/{tid}")
async def receipt_info(tid: str, request: Request) -> JSONResponse:
    simulator, merchant, _ = await _open_call(
        request, "receipt/info", KeyType.SEARCH, from_query=True
    )
    url = reports.receipt_info_url(simulator, merchant, _tid_from_path(tid))
    return JSONResponse({"receipt_url": url})
