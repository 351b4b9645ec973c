"""Autopay (자동결제): billkeys from first payments, charges against them, amount-0 sign-ups,
revoke.

A billkey arrives with the result of a first payment made with `autopay_flag` "Y" (see
`payments._apply_success`) and is stored per merchant and user. It is a credential: it
lives in the billkeys table (and in the raw body of the delivery that brought it) and
nowhere else: views, audit rows, logs and errors show `Billkey.masked` at most.

A charge (`v1.0/payments/autopay`) is a server-to-server call whose answer is the evidence;
Payletter sends no callback for it. It keeps the bookkeeping of opening a payment: the order
is committed `created` before Payletter is called, the answer moves it through the state
table (`created` → `paid`, or → `failed` on a 406), and an Idempotency-Key (its own scope)
replays the answer.

Never charging twice. The attempt is written on the order (`request_options["autopay"]`:
state `sending`, `sent_at`) and committed before the call. If the answer is lost (timeout,
5xx, a body we can't read) the order stays `created`, the attempt `unknown`, and the answer
is 504/502. A retry of the same request (same Idempotency-Key, or same `order_no`) never
calls autopay blindly: it first asks `payments/status` about the order_no (ours, so
Payletter can tell whether the first call went through):

- approved (status_code 4/5 with a tid): the order is settled `paid` from that answer;
- no payment for the order_no: the first call did not go through. It is sent once more,
  but only when the attempt is older than `settle_after()`: a request still on its way
  inside Payletter could otherwise land after our check and charge a second time. Before
  that the answer is 409 "retry later" (`reason: outcome_pending`);
- anything else (another status, status unreachable): 409/502, nothing is sent; the order
  stays `created` for `POST /orders/{order_no}/sync` or the sweeper.

The rules Payletter applies to mobile autopay (same amount and day every month, one month
after the first payment at the earliest, only if last month had a payment) are checked
before anything is stored or sent, against an injected `now`, in Korea time.
"""

from __future__ import annotations

import calendar
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.repository import BillkeyRepository
from app.billing.schemas import ChargeCreate, RegistrationCreate
from app.db import commit_before_call, utcnow
from app.errors import (
    AppError,
    Conflict,
    InvalidRequest,
    NotFound,
    PaymentRefused,
    UpstreamError,
    UpstreamTimeout,
)
from app.gateway import Gateway
from app.kit import idempotency
from app.kit.idempotency import Done, Failed, Result
from app.kit.korea_time import KST
from app.models import Billkey, IdempotencyKey, Order
from app.ops.audit import audit, audit_view
from app.ops.repository import AuditRepository
from app.orders.repository import OrderRepository
from app.orders.schemas import OrderCreate
from app.orders.service import (
    new_order_no,
    open_payment,
    order_detail,
)
from app.orders.states import PAID_STATES, OrderEvent, OrderStatus
from app.orders.transitions import can_move, transition
from app.payletter.errors import (
    BusinessRuleError,
    PayletterAPIError,
    PayletterError,
    PayletterServerError,
    PayletterTimeout,
    PayletterTransportError,
    PayletterValidationError,
    UnexpectedResponseError,
)
from app.payletter.methods import (
    METHODS,
    default_tax_amount,
    paid_status_codes,
    requested_pgcode_for_result,
)
from app.payletter.models import AutopayRequest, build_request
from app.payments.service import apply_confirmed

log = logging.getLogger(__name__)

CHARGE_SCOPE = "billing.charge"
REGISTRATION_SCOPE = "billing.registration"
# Audit actions.
CHARGE, REGISTRATION, REVOKE = "autopay_charge", "autopay_registration", "billkey_revoke"
BILLING_ACTIONS = (CHARGE, REGISTRATION, REVOKE)

# The state of the last autopay attempt of an order (request_options["autopay"]["state"]).
SENDING, UNKNOWN, NOT_SENT, ANSWERED, REFUSED = (
    "sending", "unknown", "not_sent", "answered", "refused")
_IN_DOUBT = frozenset({SENDING, UNKNOWN})  # the call may have charged; ask before resending


def settle_after(gateway: Gateway) -> timedelta:
    """How old an in-doubt attempt must be before "Payletter has no payment" is believed."""
    return timedelta(seconds=max(60.0, 4 * gateway.settings.payletter_timeout_seconds))


# ---- views ----------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def billkey_view(billkey: Billkey) -> dict[str, Any]:
    """A billkey as the API shows it: masked, never the key itself."""
    return {
        "id": billkey.id,
        "client_id": billkey.client_id,
        "user_id": billkey.user_id,
        "pgcode": billkey.pgcode,
        "masked_billkey": billkey.masked,
        "status": billkey.status,
        "first_amount": billkey.first_amount,
        "first_paid_at": _iso(billkey.first_paid_at),
        "last_charged_at": _iso(billkey.last_charged_at),
        "verified_at": _iso(billkey.verified_at),
        "revoked_at": _iso(billkey.revoked_at),
        "created_at": _iso(billkey.created_at),
    }


async def list_billkeys(session: AsyncSession, *, client_id: str | None, user_id: str | None,
                        status: str | None, after_id: int | None = None, limit: int = 100
                        ) -> list[dict[str, Any]]:
    rows = await BillkeyRepository(session).search(client_id=client_id, user_id=user_id,
                                                   status=status, after_id=after_id,
                                                   limit=limit)
    return [billkey_view(b) for b in rows]


async def get_billkey(session: AsyncSession, billkey_id: int) -> dict[str, Any]:
    billkey = await BillkeyRepository(session).get(billkey_id)
    if billkey is None:
        raise NotFound(f"no billkey {billkey_id}")
    return billkey_view(billkey)


async def billing_audit(session: AsyncSession, *, action: str | None,
                        before_id: int | None = None, limit: int = 100
                        ) -> list[dict[str, Any]]:
    """The newest audit rows of charges, registrations and revokes."""
    repo = AuditRepository(session)
    actions = [action] if action else list(BILLING_ACTIONS)
    rows = [row for name in actions
            for row in await repo.recent(action=name, before_id=before_id, limit=limit)]
    rows.sort(key=lambda row: row.id, reverse=True)
    return [audit_view(row) for row in rows[:limit]]


# ---- revoke ---------------------------------------------------------------------------


async def revoke_billkey(session: AsyncSession, billkey_id: int, *, actor: str,
                         now: datetime) -> dict[str, Any]:
    """Refuse every later charge with this billkey. Local: Payletter's API has no revoke."""
    billkey = await BillkeyRepository(session).lock(billkey_id)
    if billkey is None:
        raise NotFound(f"no billkey {billkey_id}")
    outcome = "already_revoked"
    if billkey.status != "revoked":
        billkey.status, billkey.revoked_at, outcome = "revoked", now, "revoked"
    await audit(session, actor=actor, action=REVOKE, outcome=outcome, billkey_id=billkey.id,
                masked_billkey=billkey.masked, client_id=billkey.client_id,
                user_id=billkey.user_id, pgcode=billkey.pgcode,
                note="local: Payletter's API has no revoke call")
    await session.flush()
    return billkey_view(billkey)


# ---- mobile autopay rules (휴대폰 자동결제 승인 정책) -------------------------------------


@dataclass(frozen=True)
class RuleBreach:
    rule: str
    message: str


def _months_between(earlier: datetime, later: datetime) -> int:
    a, b = earlier.astimezone(KST), later.astimezone(KST)
    return (b.year - a.year) * 12 + (b.month - a.month)


def _charge_day(first: datetime, year: int, month: int) -> int:
    """The first payment's day of month; a shorter month's last day stands in."""
    return min(first.astimezone(KST).day, calendar.monthrange(year, month)[1])


def previous_month(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the Korea-time month before `now`'s."""
    local = now.astimezone(KST)
    end = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end


def mobile_rule_breach(*, first_amount: int, first_paid_at: datetime, amount: int,
                       now: datetime, paid_last_month: bool) -> RuleBreach | None:
    """Which of Payletter's mobile autopay rules a charge at `now` breaks, if any.

    "One month (about 30 days) after the first payment" is read as: a later calendar month,
    on the same day. With the same-day rule that is 28 to 31 days; counting 30 days strictly
    would make a first payment on 1 February (or 31 January) chargeable in no month at all,
    since the next allowed day would be in April, after a month without a payment.
    """
    first, local = first_paid_at.astimezone(KST), now.astimezone(KST)
    if amount != first_amount:
        return RuleBreach("same_amount", f"mobile autopay rule (same amount every month): the "
                          f"amount must be {first_amount} won, the first payment's")
    if _months_between(first, local) < 1:
        return RuleBreach("one_month_after_first", "mobile autopay rule (first re-charge one "
                          "month after the first payment at the earliest): the first payment "
                          f"was on {first:%Y-%m-%d} (KST)")
    day = _charge_day(first, local.year, local.month)
    if local.day != day:
        return RuleBreach("same_day", f"mobile autopay rule (same day every month): charge on "
                          f"day {day} of this month (KST), not day {local.day}")
    if not paid_last_month:
        start, _ = previous_month(now)
        return RuleBreach("previous_month_paid", "mobile autopay rule (only if the previous "
                          f"month had a payment): no payment in {start:%Y-%m} (KST); a new "
                          "first payment is needed")
    return None


async def _mobile_breach(session: AsyncSession, billkey: Billkey, amount: int, now: datetime
                         ) -> RuleBreach | None:
    first_paid_at = billkey.first_paid_at
    if billkey.first_order_id is not None:
        # Payletter's own time of the first payment is what its rules are judged by.
        first = await OrderRepository(session).get_by_id(billkey.first_order_id)
        if first is not None and first.transaction_date is not None:
            first_paid_at = first.transaction_date
    start, end = previous_month(now)
    payments = await BillkeyRepository(session).count_autopay_payments(
        client_id=billkey.client_id, user_id=billkey.user_id, pgcode="mobile",
        start=start, end=end)
    return mobile_rule_breach(first_amount=billkey.first_amount, first_paid_at=first_paid_at,
                              amount=amount, now=now, paid_last_month=payments > 0)


# ---- charges --------------------------------------------------------------------------


def _pgcode(billkey: Billkey) -> str:
    return requested_pgcode_for_result(billkey.pgcode) or billkey.pgcode


async def _refusal(session: AsyncSession, gateway: Gateway, billkey: Billkey | None,
                   body: ChargeCreate, now: datetime) -> AppError | None:
    """Why this charge must not reach Payletter, or None."""
    if billkey is None:
        return NotFound(f"no billkey {body.billkey_id}", field="billkey_id",
                        reason="unknown_billkey")
    if billkey.status != "active":
        when = f" at {billkey.revoked_at:%Y-%m-%d %H:%M} UTC" if billkey.revoked_at else ""
        return Conflict(f"billkey {billkey.id} was revoked{when}; charges with it are refused "
                        "(a new first payment with autopay_flag Y issues a new one)",
                        field="billkey_id", reason="billkey_revoked")
    if body.client_id is not None and body.client_id != billkey.client_id:
        return InvalidRequest(f"billkey {billkey.id} belongs to another merchant than "
                              f"{body.client_id!r}", field="client_id", reason="billkey_mismatch")
    if body.user_id is not None and body.user_id != billkey.user_id:
        return InvalidRequest(f"billkey {billkey.id} belongs to another user than "
                              f"{body.user_id!r}", field="user_id", reason="billkey_mismatch")
    if gateway.merchant(billkey.client_id) is None:
        return InvalidRequest(f"the merchant of billkey {billkey.id} ({billkey.client_id!r}) is "
                              "not configured here", field="billkey_id",
                              reason="unknown_merchant")
    pgcode = _pgcode(billkey)
    rule = METHODS.get(pgcode)
    if rule is None or not rule.autopay:
        return InvalidRequest(f"{pgcode} has no autopay (rule: autopay not supported for this "
                              "method)", field="billkey_id", reason="autopay_not_supported")
    if pgcode == "mobile":
        breach = await _mobile_breach(session, billkey, body.amount, now)
        if breach is not None:
            return InvalidRequest(breach.message, field="amount", reason="mobile_autopay_rule",
                                  rule=breach.rule)
    return None


def _autopay_request(gateway: Gateway, billkey: Billkey, body: ChargeCreate, order_no: str
                     ) -> AutopayRequest:
    """Payletter's field rules; InvalidRequest names the field (never the billkey)."""
    try:
        return build_request(
            AutopayRequest, pgcode=_pgcode(billkey), client_id=billkey.client_id,
            user_id=billkey.user_id, amount=body.amount, product_name=body.product_name,
            billkey=billkey.billkey, ip_addr=gateway.settings.payletter_request_ip,
            service_name=body.service_name, user_name=body.user_name, order_no=order_no,
            taxfree_amount=body.taxfree_amount, tax_amount=body.tax_amount)
    except PayletterValidationError as exc:
        message = f"{exc.field}: {exc.reason}" if exc.field else exc.reason
        raise InvalidRequest(message, field=exc.field) from None


def _attempt(order: Order) -> dict[str, Any]:
    value = (order.request_options or {}).get("autopay")
    return dict(value) if isinstance(value, dict) else {}


def _set_attempt(order: Order, **changes: Any) -> None:
    options = dict(order.request_options or {})  # a new dict: the JSON column sees the change
    options["autopay"] = _attempt(order) | changes
    order.request_options = options


def _billkey_id_of(order: Order) -> int | None:
    value = (order.request_options or {}).get("billkey_id")
    return value if isinstance(value, int) else None


def _same_charge(order: Order, body: ChargeCreate) -> bool:
    """Is `order` the charge `body` describes (a retry of it)?"""
    taxfree = body.taxfree_amount or 0
    tax = body.tax_amount
    if tax is None and 0 <= taxfree <= body.amount:
        tax = default_tax_amount(body.amount, taxfree)
    return (_billkey_id_of(order) == body.billkey_id and order.amount == body.amount
            and order.taxfree_amount == taxfree and order.tax_amount == tax
            and order.product_name == body.product_name)


async def charge(session: AsyncSession, gateway: Gateway, body: ChargeCreate,
                 idempotency_key: str | None, *, actor: str, now: datetime) -> Result:
    """Charge a stored billkey once. The caller's session commits (the order was committed
    once already, before Payletter was called)."""
    claimed = await idempotency.claim(session, gateway, CHARGE_SCOPE, idempotency_key, body)
    if claimed.replay is not None:
        return claimed.replay
    result = await _charge(session, gateway, body, claimed.key, actor=actor, now=now)
    idempotency.finish(claimed.key, result)
    await session.flush()
    return result


async def _charge(session: AsyncSession, gateway: Gateway, body: ChargeCreate,
                  claim: IdempotencyKey | None, *, actor: str, now: datetime) -> Result:
    orders = OrderRepository(session)
    existing: Order | None = None
    if claim is not None and claim.order_id is not None:
        # The same request again after an answer that was not final: continue its order.
        existing = await orders.get_by_id(claim.order_id)
        if existing is not None and existing.status != OrderStatus.CREATED:
            return _answer_from_state(existing)
    elif body.order_no:
        existing = await orders.get_by_order_no(body.order_no)
        if existing is not None and (existing.status != OrderStatus.CREATED
                                     or not _same_charge(existing, body)):
            raise Conflict(f"order_no {body.order_no!r} already exists", field="order_no")

    resend_of: str | None = None
    if existing is not None and _attempt(existing).get("state") in _IN_DOUBT:
        settled = await _settle_in_doubt(session, gateway, existing, actor=actor, now=now)
        if settled is not None:
            return settled
        resend_of = _attempt(existing).get("sent_at")

    billkey = await BillkeyRepository(session).get(body.billkey_id)
    refusal = await _refusal(session, gateway, billkey, body, now)
    if refusal is not None:
        return await _refuse(session, existing, body, refusal, actor=actor)
    assert billkey is not None
    order_no = existing.order_no if existing is not None else body.order_no or new_order_no()
    request = _autopay_request(gateway, billkey, body, order_no)

    if existing is None:
        order = await _store_charge(session, request, billkey.id, now)
    else:
        locked = await orders.lock_by_order_no(existing.order_no)
        assert locked is not None
        state = _attempt(locked)
        may_send = state.get("state") in (None, NOT_SENT) or (
            state.get("state") in _IN_DOUBT and resend_of is not None
            and state.get("sent_at") == resend_of)
        if locked.status != OrderStatus.CREATED or not may_send:
            return Failed(Conflict("another request is charging this order right now; "
                                    "retry shortly for its outcome", order_no=locked.order_no),
                           retryable=True)
        _set_attempt(locked, state=SENDING, sent_at=now.isoformat(),
                     attempts=int(state.get("attempts", 0)) + 1,
                     previous="payments/status: no payment" if resend_of else None)
        order = locked
    if claim is not None:
        claim.order_id = order.id
    await session.flush()
    # The attempt is on record before anything can happen.
    await commit_before_call(session)
    return await _send(session, gateway, order, request, billkey.id, actor=actor, now=now)


async def _store_charge(session: AsyncSession, request: AutopayRequest, billkey_id: int,
                        now: datetime) -> Order:
    assert request.order_no is not None
    tax = request.effective_tax_amount()
    assert tax is not None
    values: dict[str, Any] = {
        "order_no": request.order_no,
        "client_id": request.client_id,
        "pgcode": request.pgcode,
        "status": OrderStatus.CREATED.value,
        "amount": request.amount,
        "taxfree_amount": request.taxfree_amount or 0,
        "tax_amount": tax,
        "product_name": request.product_name,
        "user_id": request.user_id,
        "user_name": request.user_name,
        "service_name": request.service_name,
        "autopay_flag": "Y",
        # Which billkey (by id, never the key) and the attempt, for retries and the audit.
        "request_options": {"origin": "autopay", "billkey_id": billkey_id,
                            "ip_addr": request.ip_addr,
                            "autopay": {"state": SENDING, "sent_at": now.isoformat(),
                                        "attempts": 1}},
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    order = await OrderRepository(session).insert_if_absent(values)
    if order is None:
        raise Conflict(f"order_no {request.order_no!r} already exists", field="order_no")
    return order


async def _send(session: AsyncSession, gateway: Gateway, order: Order, request: AutopayRequest,
                billkey_id: int, *, actor: str, now: datetime) -> Result:
    order_no = order.order_no
    try:
        result = await gateway.payletter.autopay(request)
    except BusinessRuleError as exc:  # 406: Payletter refused; nothing was charged
        order = await _mark(session, order_no, REFUSED, str(exc))
        message = f"Payletter refused the charge: {exc.message}"
        if can_move(order, OrderEvent.REQUEST_REFUSED):
            await transition(session, order, OrderEvent.REQUEST_REFUSED, reason=message)
        await audit(session, actor=actor, action=CHARGE, outcome="refused", order=order,
                    billkey_id=billkey_id, amount=order.amount, payletter_code=exc.code,
                    message=exc.message)
        return Failed(PaymentRefused(message, order_no=order_no, payletter_code=exc.code))
    except PayletterTransportError as exc:
        if not exc.may_have_reached_payletter:
            return await _not_sent(session, order_no, billkey_id, exc, actor=actor)
        return await _unknown(session, order_no, billkey_id, exc, actor=actor)
    except (PayletterServerError, UnexpectedResponseError) as exc:
        return await _unknown(session, order_no, billkey_id, exc, actor=actor)
    except PayletterAPIError as exc:  # 401/403/405: turned away at the door, nothing charged
        return await _not_sent(session, order_no, billkey_id, exc, actor=actor)
    except PayletterError as exc:  # SDK validation: checked above already; nothing was sent
        order = await _mark(session, order_no, REFUSED, str(exc))
        await transition(session, order, OrderEvent.REQUEST_REFUSED, reason=str(exc))
        await audit(session, actor=actor, action=CHARGE, outcome="refused", order=order,
                    billkey_id=billkey_id, message=str(exc))
        return Failed(InvalidRequest(str(exc), order_no=order_no))
    return await _settle_paid(
        session, order, billkey_id, tid=result.tid, amount=result.amount, cid=result.cid,
        transaction_date=result.transaction_date, verification="autopay_answer",
        evidence={"payments/autopay": {"tid": result.tid, "cid": result.cid,
                                       "amount": result.amount,
                                       "transaction_date": result.transaction_date.isoformat()}},
        actor=actor, charged_at=now)


async def _mark(session: AsyncSession, order_no: str, state: str, error: str | None) -> Order:
    order = await OrderRepository(session).lock_by_order_no(order_no)
    assert order is not None
    _set_attempt(order, state=state)
    if error is not None:
        order.last_error = error
    await session.flush()
    return order


async def _not_sent(session: AsyncSession, order_no: str, billkey_id: int, exc: PayletterError,
                    *, actor: str) -> Result:
    order = await _mark(session, order_no, NOT_SENT, str(exc))
    log.warning("autopay for order %s not sent: %s", order_no, type(exc).__name__)
    await audit(session, actor=actor, action=CHARGE, outcome="not_sent", order=order,
                billkey_id=billkey_id, amount=order.amount, error=str(exc))
    return Failed(UpstreamError(f"Payletter could not take the charge ({exc}); nothing was "
                                 "charged. Retry the same request.", order_no=order_no),
                   retryable=True)


async def _unknown(session: AsyncSession, order_no: str, billkey_id: int, exc: PayletterError,
                   *, actor: str) -> Result:
    order = await _mark(session, order_no, UNKNOWN, str(exc))
    log.warning("autopay for order %s: outcome unknown (%s)", order_no, type(exc).__name__)
    await audit(session, actor=actor, action=CHARGE, outcome="unknown", order=order,
                billkey_id=billkey_id, amount=order.amount, error=str(exc))
    what = ("Payletter did not answer in time" if isinstance(exc, PayletterTimeout)
            else f"Payletter's answer could not be used ({exc})")
    message = (f"{what}: the charge may or may not have gone through, and the order stays "
               "created. Retry the same request (same Idempotency-Key or order_no): it asks "
               "Payletter (payments/status) before charging again, so it never charges twice. "
               f"Operators: POST /orders/{order_no}/sync.")
    error_cls = UpstreamTimeout if isinstance(exc, PayletterTimeout) else UpstreamError
    return Failed(error_cls(message, order_no=order_no, reason="outcome_unknown"),
                   retryable=True)


async def _settle_in_doubt(session: AsyncSession, gateway: Gateway, order: Order, *,
                           actor: str, now: datetime) -> Result | None:
    """An earlier attempt may have charged: settle from payments/status, or say to wait.
    None: Payletter has no payment long after the attempt, so the caller sends again."""
    sent_at = _parse_time(_attempt(order).get("sent_at")) or order.created_at
    billkey_id = _billkey_id_of(order)
    client_id, order_no = order.client_id, order.order_no
    await session.flush()
    await commit_before_call(session)  # keep the key's take-over
    try:
        status = await gateway.payletter.payment_status(client_id, order_no)
        evidence: Any = status.model_dump(mode="json")
    except BusinessRuleError as exc:  # Payletter has no payment for this order_no
        status, evidence = None, f"HTTP 406: {exc.message}"
    except PayletterError as exc:
        log.warning("autopay for order %s: payments/status failed: %s", order_no,
                    type(exc).__name__)
        await audit(session, actor=actor, action=CHARGE, outcome="unknown", order=order,
                    billkey_id=billkey_id, reason="payments/status failed", error=str(exc))
        return Failed(UpstreamError(
            "an earlier attempt of this charge has no known outcome and Payletter could not be "
            "asked about it (payments/status); nothing was sent again. Retry later.",
            order_no=order_no, reason="outcome_unknown"), retryable=True)

    if status is not None and status.tid and status.status_code in paid_status_codes(order.pgcode):
        return await _settle_paid(
            session, order, billkey_id, tid=status.tid, amount=order.amount, cid=None,
            transaction_date=None, verification="status_confirmed",
            evidence={"payments/status": evidence}, actor=actor, charged_at=sent_at)
    if status is not None:
        await audit(session, actor=actor, action=CHARGE, outcome="unknown", order=order,
                    billkey_id=billkey_id, evidence={"payments/status": evidence})
        return Failed(Conflict(
            f"Payletter reports status_code {status.status_code} for order {order_no}, not an "
            "approved payment; nothing was sent again. An operator should look at it "
            f"(POST /orders/{order_no}/sync).", order_no=order_no, reason="outcome_unknown"),
            retryable=True)
    wait = sent_at + settle_after(gateway) - now
    if wait > timedelta(0):
        seconds = math.ceil(wait.total_seconds())
        await audit(session, actor=actor, action=CHARGE, outcome="pending", order=order,
                    billkey_id=billkey_id, evidence={"payments/status": evidence})
        return Failed(Conflict(
            f"Payletter has no payment for order {order_no} yet, but the earlier attempt may "
            f"still be on its way; nothing was sent again. Retry in {seconds} s: if Payletter "
            "still has none then, the charge is sent once more.", order_no=order_no,
            reason="outcome_pending", retry_after=seconds), retryable=True)
    log.info("autopay for order %s: no payment at Payletter %s after the attempt; resending",
             order_no, now - sent_at)
    return None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


async def _settle_paid(
    session: AsyncSession, order: Order, billkey_id: int | None, *, tid: str, amount: int,
    cid: str | None, transaction_date: datetime | None, verification: str,
    evidence: dict[str, Any], actor: str, charged_at: datetime,
) -> Result:
    """Payletter said the money was taken: apply it like any confirmed result."""
    extra: dict[str, Any] = {}
    if cid:
        extra["cid"] = cid
    if transaction_date is not None:
        extra["transaction_date"] = f"{transaction_date.astimezone(KST):%Y-%m-%d %H:%M:%S}"
    outcome = await apply_confirmed(session, order.order_no, tid=tid, amount=amount,
                                    user_id=order.user_id, pgcode=order.pgcode,
                                    verification=verification, extra=extra)
    settled = outcome.order
    assert settled is not None
    _set_attempt(settled, state=ANSWERED)
    if outcome.outcome not in ("applied", "duplicate"):
        await audit(session, actor=actor, action=CHARGE, outcome=outcome.outcome, order=settled,
                    billkey_id=billkey_id, amount=settled.amount, tid=tid, evidence=evidence,
                    message=outcome.message)
        return Failed(Conflict(f"Payletter charged (tid {tid}), but {outcome.message}",
                                order_no=settled.order_no))
    if billkey_id is not None:
        billkey = await BillkeyRepository(session).lock(billkey_id)
        when = transaction_date or charged_at
        if billkey is not None and (billkey.last_charged_at is None
                                    or billkey.last_charged_at < when):
            billkey.last_charged_at = when
        if billkey is not None and billkey.verified_at is None:
            billkey.verified_at = when  # Payletter charged it: the key is genuine
    await audit(session, actor=actor, action=CHARGE, outcome="paid", order=settled,
                billkey_id=billkey_id, amount=settled.amount, tid=tid,
                verification=verification, evidence=evidence)
    await session.flush()
    return Done(_charge_view(settled))


def _charge_view(order: Order) -> dict[str, Any]:
    return order_detail(order) | {"billkey_id": _billkey_id_of(order)}


def _answer_from_state(order: Order) -> Result:
    """The outcome of a charge that was settled meanwhile (sync, sweeper, another retry)."""
    status = OrderStatus(order.status)
    if status in PAID_STATES:
        return Done(_charge_view(order))
    if status is OrderStatus.FAILED:
        return Failed(PaymentRefused(order.last_error or "the charge failed",
                                      order_no=order.order_no))
    if status is OrderStatus.ABANDONED:
        return Failed(Conflict("this charge was given up: Payletter had no payment for it, so "
                                "nothing was charged. Send a new charge (new Idempotency-Key).",
                                order_no=order.order_no, reason="abandoned"))
    reason = f": {order.review_reason}" if order.review_reason else ""
    return Failed(Conflict(f"order {order.order_no} is {status.value}{reason}",
                            order_no=order.order_no))


async def _refuse(session: AsyncSession, existing: Order | None, body: ChargeCreate,
                  error: AppError, *, actor: str) -> Result:
    """Refused before reaching Payletter: on record, and the order (if any) failed."""
    order: Order | None = None
    if existing is not None:
        order = await _mark(session, existing.order_no, REFUSED, error.message)
        if can_move(order, OrderEvent.REQUEST_REFUSED):
            await transition(session, order, OrderEvent.REQUEST_REFUSED, reason=error.message)
        error = type(error)(error.message, field=error.field, order_no=order.order_no,
                            **error.extra)
    await audit(session, actor=actor, action=CHARGE, outcome="refused", order=order,
                order_no=body.order_no, billkey_id=body.billkey_id, amount=body.amount,
                reason=error.extra.get("reason"), message=error.message)
    return Failed(error)


# ---- amount-0 registration -------------------------------------------------------------


async def register(session: AsyncSession, gateway: Gateway, body: RegistrationCreate,
                   idempotency_key: str | None, *, actor: str) -> Result:
    """Open an amount-0 autopay window (merchants contracted for it, like `auto_test1`).

    The buyer's return carries the billkey (no callback: no money moved); it is applied like
    any result, so the order ends `paid` with amount 0 and the billkey is stored.
    """
    terms = OrderCreate.model_validate(body.model_dump(exclude_none=True)
                                       | {"amount": 0, "autopay_flag": "Y"})
    result = await open_payment(session, gateway, terms, idempotency_key,
                                scope=REGISTRATION_SCOPE, registration=True)
    if result.replayed:
        return result
    if isinstance(result, Done):
        order_no, outcome, message = result.view["order_no"], "window_issued", None
    else:
        order_no = result.error.extra.get("order_no")
        outcome = "error" if result.retryable else "refused"
        message = result.error.message
    order = await OrderRepository(session).get_by_order_no(order_no) if order_no else None
    await audit(session, actor=actor, action=REGISTRATION, outcome=outcome, order=order,
                order_no=order_no, client_id=order.client_id if order else body.client_id,
                user_id=body.user_id, pgcode=body.pgcode, message=message)
    return result
