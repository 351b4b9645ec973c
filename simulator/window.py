"""The buyer-facing pages: the payment window and the receipt pages."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from simulator import checkout, pages
from simulator.reports import receipt_id
from simulator.state import Simulator, sim
from simulator.store import Payment

router = APIRouter()


def _html(content: str, status_code: int = 200) -> HTMLResponse:
    # The window shows buyer data: keep it out of shared caches.
    return HTMLResponse(content, status_code, headers={"Cache-Control": "no-store"})


def _payment(simulator: Simulator, token: int) -> Payment | None:
    return simulator.store.payments.get(token)


def _not_found() -> HTMLResponse:
    return _html(pages.message_page("Not found", "No such payment window."), 404)


def _conflict(error: checkout.WindowConflict) -> HTMLResponse:
    return _html(pages.message_page("Not possible", str(error)), 409)


@router.get("/pay/{token}")
async def window(
    token: int, request: Request, location: Literal["online", "mobile"] = "online"
) -> HTMLResponse:
    simulator = sim(request)
    payment = _payment(simulator, token)
    if payment is None or payment.origin != "window":
        return _not_found()
    if payment.phase not in checkout.OPEN_PHASES:
        return _html(pages.already_processed_page(payment))
    checkout.enter(payment, location)
    merchant = simulator.merchant_for(payment)
    return _html(pages.payment_window(payment, merchant, simulator.config.public_url))


def _form_amount(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


@router.post("/pay/{token}/approve")
async def approve(token: int, request: Request) -> HTMLResponse:
    simulator = sim(request)
    payment = _payment(simulator, token)
    if payment is None or payment.origin != "window":
        return _not_found()
    form = await request.form()
    choice = form.get("result_pgcode")
    try:
        result = await checkout.approve_and_notify(
            simulator, payment,
            result_pgcode=choice if isinstance(choice, str) else None,
            amount=_form_amount(form.get("amount")),
        )
    except checkout.WindowConflict as error:
        return _conflict(error)
    return _html(pages.return_form(result.return_url, result.return_fields, "결제 완료"))


@router.post("/pay/{token}/decline")
async def decline(token: int, request: Request) -> HTMLResponse:
    payment = _payment(sim(request), token)
    if payment is None or payment.origin != "window":
        return _not_found()
    try:
        result = checkout.decline(payment)
    except checkout.WindowConflict as error:
        return _conflict(error)
    return _html(pages.return_form(result.return_url, result.return_fields, "결제 실패"))


@router.post("/pay/{token}/cancel")
async def cancel(token: int, request: Request) -> Response:
    payment = _payment(sim(request), token)
    if payment is None or payment.origin != "window":
        return _not_found()
    try:
        cancel_url = checkout.abandon(payment)
    except checkout.WindowConflict as error:
        return _conflict(error)
    if cancel_url is None:
        return _html(pages.closed_page(payment))
    # 303: the browser follows with a GET; the merchant's URL (and its query) is kept verbatim.
    return RedirectResponse(cancel_url, status_code=303)


def _paid_payment(simulator: Simulator, tid: str) -> Payment | None:
    payment = simulator.store.by_tid.get(tid)
    return payment if payment is not None and payment.paid else None


@router.get("/receipt/info/{tid}")
async def receipt_info_page(tid: str, request: Request, id: str = "") -> HTMLResponse:
    payment = _paid_payment(sim(request), tid)
    if payment is None or id != receipt_id(tid):
        return _html(pages.message_page("Not found", "No such receipt."), 404)
    return _html(pages.receipt_info_page(payment))


@router.get("/receipt/cash/{tid}")
async def cash_receipt_page(tid: str, request: Request, returnurl: str = "") -> HTMLResponse:
    payment = _paid_payment(sim(request), tid)
    if payment is None:
        return _html(pages.message_page("Not found", "No such transaction."), 404)
    return _html(pages.cash_receipt_page(
        payment, str(request.url), returnurl, issued=bool(payment.cash_receipt)
    ))


@router.post("/receipt/cash/{tid}")
async def issue_cash_receipt(tid: str, request: Request, returnurl: str = "") -> HTMLResponse:
    simulator = sim(request)
    payment = _paid_payment(simulator, tid)
    if payment is None:
        return _html(pages.message_page("Not found", "No such transaction."), 404)
    # Receipt types on the vendor's page: 1 소득공제용 -> "01", 2 지출증빙용 -> "02".
    receipt_type = "02" if request.query_params.get("type") == "2" else "01"
    checkout.issue_cash_receipt(simulator, payment, receipt_type)
    return _html(pages.cash_receipt_page(payment, str(request.url), returnurl, issued=True))
