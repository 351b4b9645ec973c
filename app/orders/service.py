"""Opening a payment: store the order first, then ask Payletter for the window.

The order is committed before Payletter is called, so a window that Payletter opened always
belongs to an order we know. If the call fails in a way that may be retried, the order stays
`created` (no window was handed out, so nothing is payable) and the same request resumes it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import commit_before_call, utcnow
from app.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    PaymentRefused,
    UpstreamError,
    UpstreamTimeout,
)
from app.gateway import Gateway
from app.kit import idempotency
from app.kit.idempotency import Done, Failed, Result
from app.kit.security import sign_link, verify_link
from app.models import Delivery, Order, OrderTransition
from app.orders.intents import IntentError, verify_intent
from app.orders.repository import OrderRepository
from app.orders.schemas import IntentOrderCreate, OrderCreate, OrderOut, TransitionOut
from app.orders.states import TRANSITIONS, OrderEvent, OrderStatus
from app.orders.transitions import transition
from app.payletter.errors import (
    BusinessRuleError,
    PayletterAPIError,
    PayletterError,
    PayletterTimeout,
    PayletterTransportError,
    PayletterValidationError,
)
from app.payletter.methods import default_tax_amount
from app.payletter.models import PaymentRequest, PaymentWindow, build_request
from app.payments.schemas import DeliveryOut
from app.webhooks.outbox import EVENT_TYPES

log = logging.getLogger(__name__)

IDEMPOTENCY_SCOPE = "orders.create"
RETURN_LINK, CANCEL_LINK = "return", "cancel"
# The result page's link: shows the order to whoever holds it (the buyer, redirected there
# from a return or cancel link of the same order), and to nobody who only knows its number.
RESULT_LINK = "result"
# Fields that define what the buyer pays for; a resumed order must match them exactly.
_TERMS = ("client_id", "pgcode", "amount", "taxfree_amount", "tax_amount", "product_name",
          "user_id")
_COLUMNS = ("pgcode", "amount", "taxfree_amount", "product_name", "user_id", "user_name",
            "service_name", "custom_parameter", "email_flag", "email_addr", "autopay_flag",
            "receipt_flag", "disposable_cup_deposit")


def new_order_no() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"PL{stamp}{secrets.token_hex(6).upper()}"


def link_signature(gateway: Gateway, purpose: str, order_no: str, client_id: str) -> str:
    """The HMAC a link of this order carries, keyed with its merchant's PAYMENT key."""
    return sign_link(gateway.payment_key(client_id) or "", purpose, order_no)


def link_verifies(gateway: Gateway, purpose: str, order: Order, signature: str | None
                  ) -> bool:
    key = gateway.payment_key(order.client_id)
    return key is not None and verify_link(key, purpose, order.order_no, signature)


def order_link(gateway: Gateway, purpose: str, order_no: str, client_id: str) -> str:
    query = urlencode({"order_no": order_no,
                       "sig": link_signature(gateway, purpose, order_no, client_id)})
    return f"{gateway.settings.public_base}/payletter/{purpose}?{query}"


def build_payment_request(
    gateway: Gateway, body: OrderCreate, order_no: str, *, registration: bool = False
) -> PaymentRequest:
    """Validate the terms with Payletter's own field rules; InvalidRequest names the field.

    `registration`: an amount-0 autopay sign-up (billkey only); the only path where an
    amount of 0 is allowed.
    """
    client_id = body.client_id or gateway.settings.primary_merchant.client_id
    if gateway.merchant(client_id) is None:
        raise InvalidRequest(f"client_id {client_id!r} is not a configured merchant",
                             field="client_id")
    fields = body.model_dump(exclude_none=True) | {
        "client_id": client_id,
        "order_no": order_no,
        "return_url": order_link(gateway, RETURN_LINK, order_no, client_id),
        "callback_url": f"{gateway.settings.public_base}/payletter/callback",
        "cancel_url": order_link(gateway, CANCEL_LINK, order_no, client_id),
    }
    if registration and (body.amount != 0 or body.autopay_flag != "Y"):
        raise InvalidRequest("a billkey registration has amount 0 and autopay_flag Y",
                             field="amount")
    if body.amount == 0 and not registration:
        raise InvalidRequest("amount must be greater than 0", field="amount")
    try:
        return build_request(PaymentRequest, **fields)
    except PayletterValidationError as exc:
        message = f"{exc.field}: {exc.reason}" if exc.field else exc.reason
        raise InvalidRequest(message, field=exc.field) from None


async def create_order(
    session: AsyncSession, gateway: Gateway, body: OrderCreate, idempotency_key: str | None
) -> Result:
    return await open_payment(session, gateway, body, idempotency_key)


INTENT_SCOPE = "orders.intent"


async def create_order_from_intent(
    session: AsyncSession, gateway: Gateway, body: IntentOrderCreate
) -> Result:
    """An order the shop's backend signed, posted by the buyer's browser.

    The terms come only from the verified intent; the browser may only pick the method
    among those the intent allows. The same intent again is the same order (its order_no
    is the idempotency key), never a second payment window.
    """
    secret = gateway.settings.intent_secret
    if secret is None:
        raise Forbidden("order intents are not enabled here (set SHOP_INTENT_SECRET)")
    try:
        terms = verify_intent(secret, body.intent)
    except IntentError as exc:
        raise InvalidRequest(str(exc), field="intent") from None
    fields = {k: v for k, v in terms.items() if k not in ("expires_at", "pgcodes")}
    fields["pgcode"] = _chosen_pgcode(terms, body.pgcode)
    try:
        order = OrderCreate.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors(include_input=False)[0]
        name = ".".join(str(p) for p in error["loc"]) or "intent"
        raise InvalidRequest(f"intent term {name}: {error['msg']}", field="intent") from None
    try:
        return await open_payment(session, gateway, order, f"intent:{order.order_no}",
                                  scope=INTENT_SCOPE)
    except InvalidRequest as exc:
        if exc.field != "Idempotency-Key":
            raise
        raise Conflict(f"this order intent was already used for order {order.order_no} "
                       "with another payment method; ask the shop for a new one",
                       field="intent") from None


def _chosen_pgcode(terms: dict[str, Any], chosen: str | None) -> str:
    fixed, allowed = terms.get("pgcode"), terms.get("pgcodes")
    if isinstance(fixed, str):
        if chosen not in (None, fixed):
            raise InvalidRequest(f"this intent is for pgcode {fixed!r}, not {chosen!r}",
                                 field="pgcode")
        return fixed
    if not isinstance(allowed, list) or not all(isinstance(p, str) for p in allowed):
        raise InvalidRequest("intent must carry pgcode or a list pgcodes", field="intent")
    if chosen is None:
        raise InvalidRequest(f"choose a pgcode: one of {', '.join(allowed)}", field="pgcode")
    if chosen not in allowed:
        raise InvalidRequest(f"pgcode {chosen!r} is not allowed by this intent "
                             f"({', '.join(allowed)})", field="pgcode")
    return chosen


async def open_payment(
    session: AsyncSession,
    gateway: Gateway,
    body: OrderCreate,
    idempotency_key: str | None,
    *,
    scope: str = IDEMPOTENCY_SCOPE,
    registration: bool = False,
) -> Result:
    """Store the order, then open its payment window (`registration`: amount-0 billkey
    sign-up through `request_autopay_registration`)."""
    request = build_payment_request(gateway, body, body.order_no or new_order_no(),
                                    registration=registration)
    claimed = await idempotency.claim(session, gateway, scope, idempotency_key, body)
    if claimed.replay is not None:
        return claimed.replay
    key = claimed.key
    if key is not None and key.order_id is not None and body.order_no is None:
        # A retry after a failed Payletter call: continue the order it created.
        resumed = await OrderRepository(session).get_by_id(key.order_id)
        if resumed is not None:
            request = build_payment_request(gateway, body, resumed.order_no,
                                            registration=registration)

    order = await _store_order(session, request)
    if key is not None:
        key.order_id = order.id
    await session.flush()
    # The window must never exist for an order we lost.
    await commit_before_call(session)

    result = await _open_window(session, gateway, order, request, registration=registration)
    idempotency.finish(key, result)
    await session.flush()
    return result


async def _store_order(session: AsyncSession, request: PaymentRequest) -> Order:
    orders = OrderRepository(session)
    assert request.order_no is not None
    assert request.amount is not None
    taxfree = request.taxfree_amount or 0
    tax = request.tax_amount
    values: dict[str, Any] = {name: getattr(request, name) for name in _COLUMNS}
    values |= {
        "order_no": request.order_no,
        "client_id": request.client_id,
        "taxfree_amount": taxfree,
        "tax_amount": tax if tax is not None else default_tax_amount(request.amount, taxfree),
        "status": OrderStatus.CREATED.value,
        "request_options": _options(request),
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    order = await orders.insert_if_absent(values)
    if order is not None:
        return order
    existing = await orders.get_by_order_no(request.order_no)
    if existing is not None and existing.status == OrderStatus.CREATED and all(
        getattr(existing, t) == values[t] for t in _TERMS
    ):
        return existing  # a retry of a request whose Payletter call failed: resume it
    raise Conflict(f"order_no {request.order_no!r} already exists", field="order_no")


def _options(request: PaymentRequest) -> dict[str, Any]:
    skip = {*_COLUMNS, "order_no", "client_id", "tax_amount", "return_url", "callback_url",
            "cancel_url"}
    return {k: v for k, v in request.model_dump(mode="json", exclude_none=True).items()
            if k not in skip}


async def _open_window(
    session: AsyncSession, gateway: Gateway, order: Order, request: PaymentRequest, *,
    registration: bool = False,
) -> Result:
    payletter = gateway.payletter
    call = payletter.request_autopay_registration if registration else payletter.request_payment
    try:
        window: PaymentWindow = await call(request)
    except BusinessRuleError as exc:
        await _refused(session, order, str(exc))
        return Failed(PaymentRefused(
            f"Payletter refused the payment: {exc.message}", order_no=order.order_no,
            payletter_code=exc.code))
    except PayletterTimeout as exc:
        await _remember_error(session, order, str(exc))
        return Failed(UpstreamTimeout(
            "Payletter did not answer in time; no payment window was handed out. "
            "Retry the same request.", order_no=order.order_no), retryable=True)
    except (PayletterTransportError, PayletterAPIError) as exc:
        await _remember_error(session, order, str(exc))
        return Failed(UpstreamError(
            f"Payletter could not open the payment: {exc}", order_no=order.order_no),
            retryable=True)
    except PayletterError as exc:  # validation at the SDK: should have been caught above
        await _refused(session, order, str(exc))
        return Failed(InvalidRequest(str(exc), order_no=order.order_no))

    columns: dict[str, str | None] = {"token": window.token, "online_url": window.online_url,
               "mobile_url": window.mobile_url}
    issued = await OrderRepository(session).issue_window(
        order.id, columns, from_status=OrderStatus.CREATED.value, to_status=_WINDOW_TO.value,
        event=OrderEvent.WINDOW_ISSUED.value, reason="payments/request ok", now=utcnow())
    if issued is not None:
        session.expire(order)  # written around the ORM: read anew if needed again
        return Done(order_view(OrderOut.model_validate(issued)))
    # No longer `created` (a result got here first): the window is kept, the state table
    # decides the rest, as for any event.
    order = await _reload(session, order)
    order.token, order.online_url, order.mobile_url = (
        window.token, window.online_url, window.mobile_url)
    order.last_error = None
    await transition(session, order, OrderEvent.WINDOW_ISSUED, reason="payments/request ok")
    return Done(order_detail(order))


async def _reload(session: AsyncSession, order: Order) -> Order:
    locked = await OrderRepository(session).lock_by_order_no(order.order_no)
    assert locked is not None
    return locked


async def _refused(session: AsyncSession, order: Order, message: str) -> None:
    order = await _reload(session, order)
    order.last_error = message
    await transition(session, order, OrderEvent.REQUEST_REFUSED, reason=message)


async def _remember_error(session: AsyncSession, order: Order, message: str) -> None:
    order = await _reload(session, order)
    order.last_error = message
    log.warning("payments/request failed for order %s: %s", order.order_no, message)


# Where a payment window moves an order (the table's row), and that the shop gets no event
# for it: `issue_window` writes no outbox event.
_WINDOW_TO = TRANSITIONS[OrderStatus.CREATED, OrderEvent.WINDOW_ISSUED]
assert _WINDOW_TO not in EVENT_TYPES, "issue_window would have to write the shop's event"


def order_view(order: OrderOut) -> dict[str, Any]:
    """A write's answer: the order's fields, its history left to GET /orders/{order_no}."""
    return order.model_dump(mode="json") | {"deliveries": [], "transitions": []}


def order_detail(
    order: Order, deliveries: Sequence[Delivery] = (), transitions: Sequence[OrderTransition] = ()
) -> dict[str, Any]:
    """The order as the API shows it: its fields at top level, then its history."""
    view = order_view(OrderOut.model_validate(order))
    view["deliveries"] = [DeliveryOut.model_validate(d).model_dump(mode="json")
                          for d in deliveries]
    view["transitions"] = [TransitionOut.model_validate(t).model_dump(mode="json")
                           for t in transitions]
    return view
