"""The ops page: server-rendered HTML for operators, no JavaScript.

Orders with the filters of GET /orders, one order with its whole history as one timeline,
the needs-review queue and daily totals; read-only but for one write, a refund behind a
confirmation step.

Signing in takes the ops token once and starts a session (`app.ops.sessions`: the signed
cookie, its record, the CSRF token every form that writes carries); this module only reads
and sets the cookie.
`Authorization: Bearer <ops token>` works as well (curl); the shop token never does.
Failed sign-ins count against the caller's address like wrong bearer tokens
(`app.kit.throttle`). Every page is a template (app/templates/ops/, autoescaped) and a strict
Content-Security-Policy forbids scripts altogether.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import utcnow
from app.errors import AppError, Forbidden, InvalidRequest, NotFound, TooManyRequests
from app.gateway import Gateway
from app.kit.deps import (
    GatewayDep,
    SessionDep,
    caller_address,
    caller_role,
    count_failure,
    refuse_if_throttled,
)
from app.kit.http_errors import app_error_response
from app.kit.korea_time import KST, korea_day_start
from app.kit.security import token_in
from app.kit.templates import html_page, url
from app.ops import views
from app.ops.sessions import SESSION_SECONDS, active_session, end_session, start_session
from app.orders.history import order_records, timeline
from app.orders.queries import (
    FILTER_PARAMS,
    SortKey,
    csv_stream,
    order_totals,
    parse_filter,
    search_orders,
)
from app.orders.repository import OrderRepository, OrderSearchRepository
from app.refunds.endpoints import refund_status_code
from app.refunds.service import REFUNDABLE, check_refundable
from app.refunds.service import cancel_order as refund_order

log = logging.getLogger(__name__)

COOKIE = "ops_session"
COOKIE_PATH = "/ops"
ACTOR = "ops-page"
CHART_DAYS = 14

SECURITY_HEADERS = {
    # No script of any kind may run, even if an escape were missed somewhere. Styles are
    # inline: the one stylesheet in app/templates/base.html, the chart legend's colours.
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "img-src 'self' data:; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# -- the caller -------------------------------------------------------------------------

@dataclass(frozen=True)
class OpsCaller:
    via: Literal["session", "bearer"]
    csrf: str  # what forms carry; "" for a bearer caller, who needs none
    session: str = ""  # the session's digest (its record), "" for a bearer caller


async def ops_page_caller(request: Request, gateway: GatewayDep, db: SessionDep) -> OpsCaller:
    """An operator: the bearer ops token, or a session (and its CSRF token on a POST)."""
    caller = await _authenticate(request, gateway, db)
    request.state.ops_caller = caller  # for the error page's header
    return caller


async def _authenticate(request: Request, gateway: Gateway, db: AsyncSession) -> OpsCaller:
    if "authorization" in request.headers:
        if caller_role(request, gateway) != "ops":  # the API's own check: 401 / 403
            raise Forbidden("the ops page takes the ops token")
        return OpsCaller("bearer", "")
    session = await active_session(db, request.cookies.get(COOKIE), gateway.settings.ops_tokens)
    if request.method in ("GET", "HEAD"):
        if session is None:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise StarletteHTTPException(
                303, "sign in first", headers={"Location": url("/ops/login", {"next": here})})
        return OpsCaller("session", session.csrf, session.digest)
    if session is None:
        raise Forbidden("no valid ops session: sign in again")
    form = await request.form()
    if not session.csrf_matches(form.get("csrf")):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")
    return OpsCaller("session", session.csrf, session.digest)


OpsPageDep = Annotated[OpsCaller, Depends(ops_page_caller)]


# -- every answer: HTML errors and the security headers -----------------------------------

class OpsRoute(APIRoute):
    """Errors become HTML pages, and every answer carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except StarletteHTTPException as exc:
                location = (exc.headers or {}).get("Location")
                if exc.status_code == 303 and location:
                    response = RedirectResponse(location, status_code=303)
                else:
                    response = error_page(request, exc.status_code, str(exc.detail))
            except TooManyRequests as exc:  # JSON like every 429, for clients that back off
                response = app_error_response(exc)
            except AppError as exc:
                response = error_page(request, exc.status_code, exc.message)
                response.headers.update(exc.headers)
            except RequestValidationError as exc:
                fields = ", ".join(str(e["loc"][-1]) for e in exc.errors()) or "the form"
                response = error_page(request, 422, f"invalid value for {fields}")
            response.headers.update(SECURITY_HEADERS)
            return response

        return handle


router = APIRouter(prefix="/ops", tags=["ops page"], include_in_schema=False,
                   route_class=OpsRoute)


def page(template: str, caller: OpsCaller | None, *, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    """An ops page (app/templates/ops/); the header offers sign-out to a session's caller."""
    return html_page(f"ops/{template}", status_code=status_code,
                     csrf=caller.csrf if caller is not None else None, **context)


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    order_no = request.path_params.get("order_no")
    caller = getattr(request.state, "ops_caller", None)
    return page("error.html", caller if isinstance(caller, OpsCaller) else None,
                status_code=status_code, status=status_code, error=message,
                back=order_no if isinstance(order_no, str) and status_code != 404 else None)


# -- signing in and out -------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    """Only a path on this page: never another site (//evil, \\evil, https://…)."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return "/ops"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/ops"
    if parts.path != "/ops" and not parts.path.startswith("/ops/"):
        return "/ops"
    return target


@router.get("/login")
async def login_page(next: str | None = None) -> HTMLResponse:
    """The sign-in form: paste the ops token."""
    return page("login.html", None, next=_safe_next(next), problem=None)


@router.post("/login")
async def login(request: Request, gateway: GatewayDep, db: SessionDep,
                token: Annotated[str, Form(max_length=1000)] = "",
                next: Annotated[str, Form(max_length=2000)] = "/ops") -> Response:
    """Check the ops token (constant time, as the API does) and start a session: on record
    first (committed before the answer), then the cookie."""
    settings = gateway.settings
    given = token.strip()
    source = refuse_if_throttled(request, gateway)  # before the token is compared
    # The API's comparison (constant time, every accepted token); the shop token is just
    # another wrong one here.
    if not given or not token_in(given, settings.ops_tokens):
        if given:
            count_failure(gateway, source)
        log.warning("ops page: sign-in refused from %s", _caller_address(request, gateway))
        return page("login.html", None, status_code=403, next=_safe_next(next),
                    problem="That is not the ops token.")
    address = _caller_address(request, gateway)
    cookie = await start_session(db, given, address[:64] or None)
    log.info("ops page: signed in from %s", address)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE, cookie, max_age=SESSION_SECONDS, path=COOKIE_PATH,
        secure=settings.public_base_url.lower().startswith("https://"), httponly=True,
        samesite="strict")
    return response


def _caller_address(request: Request, gateway: Gateway) -> str:
    address = caller_address(request, gateway)
    return str(address) if address else (request.client.host if request.client else "")


@router.post("/logout")
async def logout(gateway: GatewayDep, db: SessionDep, caller: OpsPageDep) -> Response:
    """End the session: its record goes (a copy of the cookie is refused from now on), and
    the browser is told to drop the cookie."""
    if caller.session:
        await end_session(db, caller.session)
    response = RedirectResponse("/ops/login", status_code=303)
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
        secure=gateway.settings.public_base_url.lower().startswith("https://"))
    return response


# -- orders ---------------------------------------------------------------------------------

PAGE_PARAMS = (*FILTER_PARAMS, "sort", "limit")


def _limit(raw: str | None) -> int:
    text = (raw or "").strip()
    if not text:
        return 50
    if not text.isdigit():
        raise InvalidRequest("limit must be a whole number", field="limit")
    return int(text)


@router.get("")
async def order_list(request: Request, session: SessionDep, caller: OpsPageDep) -> Response:
    """Orders by the filters of GET /orders, newest first, a keyset page at a time."""
    params = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    kept = [(k, params[k]) for k in PAGE_PARAMS if k in params]
    fields = views.filter_fields(params)
    try:
        unknown = sorted(set(params) - {*PAGE_PARAMS, "cursor"})
        if unknown:
            raise InvalidRequest(f"unknown filter {unknown[0]!r}; filters are "
                                 f"{', '.join(FILTER_PARAMS)}", field=unknown[0])
        flt = parse_filter(params)
        sort = SortKey.parse(params.get("sort"))
        cursor = params.get("cursor")
        result = await search_orders(session, flt, sort=sort, cursor=cursor,
                                     limit=_limit(params.get("limit")))
        totals = await order_totals(session, flt)
    except InvalidRequest as exc:
        return page("orders.html", caller, status_code=422, fields=fields, error=exc.message)
    return page("orders.html", caller, fields=fields, error=None, totals=totals,
                orders=result.items, kept=kept, next_cursor=result.next_cursor,
                on_later_page=bool(cursor),
                export=url("/ops/orders.csv", [(k, v) for k, v in kept if k != "limit"]))


@router.get("/orders.csv")
async def order_export(request: Request, gateway: GatewayDep, caller: OpsPageDep) -> Response:
    """The matching orders as CSV (the same export as GET /orders?format=csv)."""
    params = {k: v for k, v in request.query_params.items() if v.strip()}
    flt, sort = parse_filter(params), SortKey.parse(params.get("sort"))
    return StreamingResponse(
        csv_stream(gateway.sessionmaker, flt, sort), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="orders.csv"'})


@router.get("/orders/{order_no}")
async def order_page(order_no: str, session: SessionDep, caller: OpsPageDep) -> Response:
    """One order: every field, then its history as one timeline in time order."""
    records = await order_records(session, order_no)
    order = records.order
    return page("order.html", caller, order=order, entries=timeline(records),
                fields=views.order_fields(order),
                refundable=order.status in REFUNDABLE and order.amount > order.cancelled_amount)


_KEY = re.compile(r"^[0-9a-f]{32}$")


def _amount(raw: str) -> int | None:
    text = raw.replace(",", "").replace(" ", "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 15 or int(text) <= 0:
        raise InvalidRequest("the amount must be a positive whole number of won",
                             field="amount")
    return int(text)


@router.post("/orders/{order_no}/cancel")
async def cancel(
    order_no: str, session: SessionDep, gateway: GatewayDep, caller: OpsPageDep,
    amount: Annotated[str, Form(max_length=40)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
    key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Refund, in two steps: first a confirmation page, then (confirm=yes) the refund."""
    value = _amount(amount)
    if confirm != "yes":
        current = await OrderRepository(session).get_by_order_no(order_no)
        if current is None:
            raise NotFound(f"no order {order_no!r}")
        # Payletter's rules for this method, checked now so a refusal shows before asking.
        refund_amount, _, _ = check_refundable(current, value, None, utcnow())
        return page("confirm.html", caller, order=current, amount=refund_amount,
                    full=refund_amount == current.amount - current.cancelled_amount,
                    key=secrets.token_hex(16))
    if value is None or not _KEY.match(key):
        raise InvalidRequest("the confirmation is incomplete: start again from the order")
    # The key makes a double-submitted confirmation refund once.
    answer = await refund_order(session, gateway, order_no, amount=value, taxfree_amount=None,
                                tax_amount=None, idempotency_key=f"{ACTOR}:{key}", actor=ACTOR)
    refund: dict[str, Any] = answer.body["refund"]
    order: dict[str, Any] = answer.body["order"]
    headline = {"done": "Refunded", "requested": "Refund requested",
                "unknown": "Refund outcome unknown"}.get(refund["status"], "Refund failed")
    message = answer.body.get("message")
    log.info("ops page: refund %s of order %s: %s", refund["id"], order_no, refund["status"])
    return page("refund.html", caller, status_code=refund_status_code(answer), headline=headline,
                refund=refund, order=order, message=message, order_no=order_no)


# -- the review queue and the daily totals ------------------------------------------------

@router.get("/review")
async def review_queue(session: SessionDep, caller: OpsPageDep, cursor: str | None = None
                       ) -> Response:
    """Orders in needs_review, newest first, each with why."""
    flt = parse_filter({"needs_review": "true"})
    sort = SortKey.parse("-created_at")
    try:
        result = await search_orders(session, flt, sort=sort, cursor=cursor, limit=50)
    except InvalidRequest as exc:
        return page("review.html", caller, status_code=422, error=exc.message)
    totals = await order_totals(session, flt)
    return page("review.html", caller, error=None, count=totals["count"],
                orders=result.items, next_cursor=result.next_cursor,
                on_later_page=bool(cursor))


@router.get("/totals")
async def daily_totals(session: SessionDep, caller: OpsPageDep,
                       measure: Literal["amount", "count"] = "amount") -> Response:
    """Paid orders per Korea day and method over the last 14 days, as a bar chart."""
    today = datetime.now(KST).date()
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    rows = await OrderSearchRepository(session).daily_totals(korea_day_start(days[0]))
    return page("totals.html", caller, first=days[0].isoformat(), last=days[-1].isoformat(),
                measure=measure, other="count" if measure == "amount" else "amount",
                chart=views.daily_chart(days, rows, measure),
                daily=views.daily_table(days, rows))
