"""The three URLs Payletter and the buyer's browser call: callback, return and cancel.

This module deals with HTTP only: who is calling, reading and parsing the body, and the
answer. Verifying and applying the result is `app.payments.service.receive`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import ClientDisconnect

from app.db import session_scope
from app.errors import BadRequest, PayloadTooLarge
from app.gateway import Gateway
from app.kit.bodies import BodyError, parse_fields
from app.kit.deps import GatewayDep, SessionDep, caller_address
from app.kit.net import IPAddress, in_networks
from app.kit.responses import (
    BROWSER_RESPONSES,
    CALLBACK_BODY,
    CALLBACK_RESPONSES,
    CANCEL_DOC,
    RETURN_DOC,
    CallbackAnswer,
    errors,
    not_json,
)
from app.kit.templates import html_page
from app.metrics import FORBIDDEN_SOURCES, observe_delivery
from app.models import Order
from app.orders.repository import OrderRepository
from app.orders.service import CANCEL_LINK, RESULT_LINK, RETURN_LINK, link_signature, link_verifies
from app.payments.service import (
    MALFORMED,
    Inbound,
    Kind,
    Outcome,
    link_signed,
    receive,
    receive_signed_callback,
    record,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/payletter", tags=["payletter"])

# Set on request.state so the error handler can record and answer a delivery it interrupted.
INBOUND_STATE = "payletter_inbound"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused early if it is larger than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"body larger than {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody is left to answer; not our error either
        raise BadRequest("the client went away before its body was complete") from None
    return b"".join(chunks)


def make_inbound(
    kind: Kind, request: Request, gateway: Gateway, body: bytes, fields: dict[str, Any],
    source: IPAddress | None = None,
) -> Inbound:
    """`source`: the caller's address when the route already worked it out."""
    peer = request.client.host if request.client else ""
    source = source or caller_address(request, gateway)
    query = request.scope["query_string"].decode("latin-1")
    order_no = signature = None
    if query:  # Payletter's callback has none: skip building the parsed query
        order_no, signature = request.query_params.get("order_no"), request.query_params.get("sig")
    return Inbound(
        kind=kind,
        fields=fields,
        raw_body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        content_type=request.headers.get("content-type"),
        source_addr=str(source) if source else peer,
        peer_addr=peer,
        link_order_no=order_no,
        link_signature=signature,
        query_string=query or None,
        body_bytes=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(),
        link_signed=link_signed(gateway, kind, order_no, signature),
    )


_ACK = JSONResponse({"code": 0, "message": ""}).body  # encoded once


def callback_answer(code: int, message: str) -> Response:
    # Payletter reads `code`; the HTTP status is for humans and proxies.
    if code == 0:
        return Response(_ACK, media_type="application/json")
    status = code if 400 <= code < 600 else 400
    return JSONResponse({"code": code, "message": message}, status_code=status)


# The signed link each kind of browser visit comes through.
_VISIT_LINKS: dict[str, str] = {"return": RETURN_LINK, "cancel": CANCEL_LINK}


def result_redirect(gateway: Gateway, inbound: Inbound, order: Order | None,
                    outcome: str) -> RedirectResponse:
    """To the result page (the shop's, or ours). The order's status and a signed result
    link only for a browser that came through this order's own signed return or cancel
    link: someone who merely knows or guesses an order number learns nothing of it."""
    base = gateway.settings.shop_result_url or f"{gateway.settings.public_base}/payletter/result"
    purpose = _VISIT_LINKS.get(inbound.kind)
    proven = order if order is not None and purpose is not None and link_verifies(
        gateway, purpose, order, inbound.link_signature) else None
    params = {"order_no": order.order_no if order else inbound.link_order_no,
              "status": proven.status if proven else None, "outcome": outcome,
              "sig": link_signature(gateway, RESULT_LINK, proven.order_no, proven.client_id)
              if proven else None}
    query = urlencode({k: v for k, v in params.items() if v})
    separator = "&" if "?" in base else "?"
    return RedirectResponse(f"{base}{separator}{query}", status_code=303)


def answer_for(gateway: Gateway, inbound: Inbound, outcome: Outcome) -> Response:
    """How each kind of caller is told the outcome."""
    if inbound.kind == "callback":
        return callback_answer(outcome.code, outcome.message)
    return result_redirect(gateway, inbound, outcome.order, outcome.outcome)


async def _deliver(kind: Kind, request: Request, gateway: Gateway, body: bytes,
                   fields: dict[str, Any], source: IPAddress | None = None) -> Response:
    inbound = make_inbound(kind, request, gateway, body, fields, source)
    setattr(request.state, INBOUND_STATE, inbound)
    started = time.perf_counter()
    outcome = None
    if kind == "callback" and gateway.engine.dialect.name == "postgresql":
        outcome = await receive_signed_callback(gateway, inbound)  # one round trip, or None
    if outcome is None:
        async with session_scope(gateway.sessionmaker) as session:
            outcome = await receive(session, gateway, inbound)
    observe_delivery(kind, outcome.outcome, outcome.verification,
                     time.perf_counter() - started)
    return answer_for(gateway, inbound, outcome)


async def _malformed(kind: Kind, request: Request, gateway: Gateway, body: bytes,
                     reason: str) -> Response:
    inbound = make_inbound(kind, request, gateway, body, {})
    outcome = Outcome("rejected", "malformed", MALFORMED, f"malformed body: {reason}")
    async with session_scope(gateway.sessionmaker) as session:
        await record(session, inbound, outcome)
    observe_delivery(kind, outcome.outcome, outcome.verification, 0.0)
    if kind == "callback":
        return callback_answer(outcome.code, outcome.message)
    return JSONResponse({"error": {"type": "bad_request", "message": outcome.message}}, 400)


async def _parse_and_deliver(kind: Kind, request: Request, gateway: Gateway, body: bytes,
                             source: IPAddress | None = None) -> Response:
    """The body's fields (JSON or form-encoded) delivered; a malformed body recorded as such."""
    try:
        fields = parse_fields(body, request.headers.get("content-type"))
    except BodyError as exc:
        return await _malformed(kind, request, gateway, body, str(exc))
    return await _deliver(kind, request, gateway, body, fields, source)


@router.post("/callback", response_model=CallbackAnswer,
             response_description="Applied, or already applied (`code` 0)",
             responses=CALLBACK_RESPONSES, openapi_extra=CALLBACK_BODY)
async def callback(request: Request, gateway: GatewayDep) -> Response:
    """Payletter's server-to-server result (JSON); code 0 only after it is committed."""
    source = caller_address(request, gateway)
    if source is None or not in_networks(source, gateway.settings.callback_networks):
        # Not stored: strangers must not be able to fill the disk.
        FORBIDDEN_SOURCES.labels(kind="callback").inc()
        log.warning("callback refused from %s (peer %s)", source,
                    request.client.host if request.client else None)
        return callback_answer(403, "source address not allowed")
    try:
        body = await read_body(request, gateway.settings.max_body_bytes)
    except PayloadTooLarge as exc:
        return callback_answer(413, exc.message)
    # JSON is what Payletter documents; a form-encoded one is read too, never refused.
    return await _parse_and_deliver("callback", request, gateway, body, source)


@router.post("/return", status_code=303, response_class=RedirectResponse,
             responses=BROWSER_RESPONSES, openapi_extra=RETURN_DOC)
async def payment_return(request: Request, gateway: GatewayDep) -> Response:
    """The buyer's browser brings the result (form or JSON); verified like a callback."""
    body = await read_body(request, gateway.settings.max_body_bytes)
    return await _parse_and_deliver("return", request, gateway, body)


@router.get("/cancel", status_code=303, response_class=RedirectResponse,
            responses=BROWSER_RESPONSES, openapi_extra=CANCEL_DOC)
@router.post("/cancel", status_code=303, response_class=RedirectResponse,
             responses=BROWSER_RESPONSES, openapi_extra=CANCEL_DOC)
async def buyer_cancel(request: Request, gateway: GatewayDep) -> Response:
    """The buyer pressed cancel in the payment window."""
    body = await read_body(request, gateway.settings.max_body_bytes)
    try:
        fields = parse_fields(body, request.headers.get("content-type")) if body else {}
    except BodyError:
        fields = {}
    return await _deliver("cancel", request, gateway, body, fields)


@router.get("/result", response_class=Response, responses={
    **not_json("text/html", "The result page"), **errors(413, 500, 503)})
async def result_page(request: Request, session: SessionDep, gateway: GatewayDep
                      ) -> HTMLResponse:
    """A plain page for the buyer when the shop has no result page of its own: the order
    only through its signed result link (the redirect after a return or cancel)."""
    order_no = request.query_params.get("order_no", "")[:64]
    signature = request.query_params.get("sig")
    order = await OrderRepository(session).get_by_order_no(order_no) if order_no else None
    if order is not None and not link_verifies(gateway, RESULT_LINK, order, signature):
        order = None  # the same page as for no order: an order number alone shows nothing
    return html_page(
        "payments/result.html", order=order, signature=signature,
        demo=gateway.settings.payletter_env == "sim",
        # The URL is the key to this page: no Referer carries it away, no cache keeps it.
        headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})
