"""Where a payment result is verified and applied: one path for callback and return alike.

    parse → verify (payhash; Payletter's payments/status when there is none, and for
            every buyer's return, since payhash doesn't name the order)
          → lock the order → match (order_no, amount, user_id, method, tid)
          → apply through the state table → record the delivery → flush

The caller's session commits once, after this returns; only then may the callback answer
code 0. A result changes an order at most once: the order row is locked (SQLite:
BEGIN IMMEDIATE), a tid already on the order is a duplicate, and a tid is unique across
orders.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession

from app.bodies import BodyError, parse_fields
from app.db import utcnow
from app.errors import NotFound
from app.gateway import Gateway
from app.models import Order, OrderTransition
from app.order_states import OrderEvent, OrderStatus
from app.payletter.errors import BusinessRuleError, PayletterError
from app.payletter.methods import METHODS
from app.payletter.models import parse_payletter_datetime
from app.payletter.payhash import verify_payhash
from app.repositories import BillkeyRepository, DeliveryRepository, OrderRepository
from app.security import verify_link
from app.services.orders import CANCEL_LINK, RETURN_LINK
from app.services.transitions import can_move, transition

log = logging.getLogger(__name__)

Kind = Literal["callback", "return", "cancel"]
MAX_AMOUNT = 10**12  # far above any real payment; larger numbers are garbage, not money

# Answer codes (0 = acknowledged). Mirrors the HTTP status we send with them.
ACK, MALFORMED, UNVERIFIED, UNKNOWN_ORDER, NEEDS_REVIEW, UNAVAILABLE = 0, 400, 401, 404, 409, 503

# Result fields copied into payment_details, by what they describe.
_VA_FIELDS = ("account_no", "account_name", "account_holder", "bank_code", "bank_name",
              "issue_tid", "expire_date", "expire_time")
_STATUS_PAID = frozenset({4, 5})  # payments/status: 4 approved, 5 done
_REPEAT = "payhash_ok"  # verification of a return repeating the tid its order already has


@dataclass(frozen=True)
class Inbound:
    """One delivery as it arrived, before we believe any of it."""

    kind: Kind
    fields: Mapping[str, Any]
    raw_body: str
    content_type: str | None
    source_addr: str
    peer_addr: str
    # The signed order_no on the return/cancel URL we built, if any.
    link_order_no: str | None = None
    link_signature: str | None = None
    query_string: str | None = None  # kept so an operator can replay the delivery


@dataclass
class Outcome:
    outcome: str  # applied, duplicate, needs_review, unknown_order, rejected, ignored, error
    verification: str
    code: int
    message: str
    order: Order | None = None
    transition: OrderTransition | None = None
    delivery_id: int | None = None  # set once the delivery is recorded

    @property
    def acknowledged(self) -> bool:
        return self.code == ACK


class MalformedResult(ValueError):
    pass


@dataclass(frozen=True)
class PaymentResult:
    """The fields of a return or callback that we act on, type-checked."""

    success: bool
    order_no: str
    tid: str | None = None
    amount: int | None = None
    user_id: str | None = None
    pgcode: str | None = None
    payhash: str | None = None
    billkey: str | None = None  # autopay: a credential, kept out of `extra` and logs
    code: str | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_account_issuance(self) -> bool:
        return bool(self.extra.get("account_no")) and self.payhash is None


def parse_result(kind: Kind, fields: Mapping[str, Any]) -> PaymentResult:
    """Turn a raw body into a PaymentResult, or raise MalformedResult saying what is wrong."""
    order_no = _text(fields, "order_no", required=True, max_len=64)
    assert order_no is not None
    code = _text(fields, "code", max_len=16) if "code" in fields else None
    # Callbacks are sent on success only; a return says so with code "0".
    success = kind == "callback" or code == "0"
    if kind == "return" and code is None:
        raise MalformedResult("code is required on a return")
    if not success:
        return PaymentResult(success=False, order_no=order_no, code=code,
                             message=_text(fields, "message", max_len=512))
    result = PaymentResult(
        success=True,
        order_no=order_no,
        tid=_text(fields, "tid", required=True, max_len=40),
        amount=_money(fields, "amount", required=True),
        user_id=_text(fields, "user_id", required=True, max_len=50),
        pgcode=_text(fields, "pgcode", max_len=20),
        payhash=_text(fields, "payhash", max_len=128) or None,
        billkey=_text(fields, "billkey", max_len=40) or None,
        code=code,
        extra=_extra(fields),
    )
    return result


def _text(fields: Mapping[str, Any], name: str, *, required: bool = False,
          max_len: int = 1024) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise MalformedResult(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedResult(f"{name} must be a string")
    text = str(value)
    if len(text) > max_len:
        raise MalformedResult(f"{name} is longer than {max_len} characters")
    if any(ord(ch) < 32 for ch in text):
        raise MalformedResult(f"{name} contains control characters")
    return text


def _money(fields: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise MalformedResult(f"{name} is required")
        return None
    if isinstance(value, bool):
        raise MalformedResult(f"{name} must be a whole number of won")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:  # floats, "1,000", "1000.0", "-5": never guess with money
        raise MalformedResult(f"{name} must be a whole number of won")
    if not 0 <= number <= MAX_AMOUNT:
        raise MalformedResult(f"{name} is out of range")
    return number


def _extra(fields: Mapping[str, Any]) -> dict[str, Any]:
    # Untrusted even in a verified result (payhash covers user_id, amount and tid only, and
    # the buyer can edit a return): text and whole numbers only, made storable.
    keep = ("cid", "pay_info", "card_info", "domestic_flag", "transaction_date",
            "install_month", "taxfree_amount", "tax_amount", *_VA_FIELDS)
    extra = {k: _storable(fields[k]) for k in keep if fields.get(k) not in (None, "")}
    extra = {k: v for k, v in extra.items() if v is not None}
    receipt = fields.get("cash_receipt")
    if isinstance(receipt, Mapping):
        extra["cash_receipt"] = {_storable(k): _storable(v) for k, v in receipt.items()
                                 if isinstance(k, str) and isinstance(v, str)}
    else:
        flat = {_storable(k.removeprefix("cash_receipt_")): _storable(v)
                for k, v in fields.items()
                if isinstance(k, str) and k.startswith("cash_receipt_") and isinstance(v, str)}
        if flat:
            extra["cash_receipt"] = flat
    return extra


def _storable(value: Any) -> Any:
    """Text without control characters or lone surrogates (which PostgreSQL and JSON refuse),
    at most 256 characters; whole numbers as they are; anything else dropped (None)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int):
        return value
    return _printable(value, 256)


# ---- the operation --------------------------------------------------------------------


async def receive(session: AsyncSession, gateway: Gateway, inbound: Inbound) -> Outcome:
    """Verify and apply one delivery, record it, flush. The caller commits."""
    if inbound.kind == "cancel":
        outcome = await _buyer_cancel(session, gateway, inbound)
    else:
        try:
            result = parse_result(inbound.kind, inbound.fields)
        except MalformedResult as exc:
            outcome = Outcome("rejected", "malformed", MALFORMED, f"malformed result: {exc}")
        else:
            outcome = await _handle_result(session, gateway, inbound, result)
    await record(session, inbound, outcome)
    log.info(
        "%s delivery order_no=%s tid=%s verification=%s outcome=%s code=%s",
        inbound.kind, _claimed(inbound, "order_no"), _claimed(inbound, "tid"),
        outcome.verification, outcome.outcome, outcome.code,
    )
    return outcome


async def _handle_result(
    session: AsyncSession, gateway: Gateway, inbound: Inbound, result: PaymentResult
) -> Outcome:
    orders = OrderRepository(session)
    if inbound.kind == "return":
        refusal = await _check_return_link(orders, gateway, inbound, result)
        if refusal is not None:
            return refusal

    if not result.success:
        return await _apply_failure(session, orders, result)

    verification = "payhash_ok"
    # Without a payhash nothing in the body proves the result. A return's payhash proves
    # less than it seems: it covers user_id+amount+tid, not order_no, so a twin order's
    # (same amount and buyer) unapplied result would verify on this order's return URL.
    # Only Payletter can say which order a tid paid; the callback, from Payletter's own
    # addresses, needs no such question.
    repeat_only = False
    if result.payhash is None or inbound.kind == "return":
        confirmed = await _confirm_with_payletter(session, gateway, orders, result)
        if isinstance(confirmed, Outcome):
            return confirmed
        verification, repeat_only = confirmed, confirmed == _REPEAT
    assert result.tid is not None
    order, tid_holder = await orders.lock_for_result(result.order_no, result.tid)
    if order is None:
        return _unknown_order(gateway, result)
    if result.payhash is not None:
        key = gateway.payment_key(order.client_id)
        ok = key is not None and verify_payhash(
            result.payhash, user_id=result.user_id or "", amount=result.amount or 0,
            tid=result.tid or "", payment_key=key)
        if not ok:
            return Outcome("rejected", "payhash_bad", UNVERIFIED,
                           "payhash does not verify; result refused", order)
    # Payletter wasn't asked about a repeat: it may be answered, but change nothing.
    return await _apply_success(session, order, tid_holder, result, verification,
                                may_change=not repeat_only)


async def _check_return_link(
    orders: OrderRepository, gateway: Gateway, inbound: Inbound, result: PaymentResult
) -> Outcome | None:
    """A return must come back through the signed URL of the same order."""
    order_no = result.order_no
    order = await orders.get_by_order_no(order_no)
    if order is None:
        return _unknown_order(gateway, result)
    key = gateway.payment_key(order.client_id)
    if (
        key is None
        or inbound.link_order_no != order_no
        or not verify_link(key, RETURN_LINK, order_no, inbound.link_signature)
    ):
        return Outcome("rejected", "signature_bad", UNVERIFIED,
                       "return does not match the signed return URL of this order", order)
    return None


async def _confirm_with_payletter(
    session: AsyncSession, gateway: Gateway, orders: OrderRepository, result: PaymentResult
) -> str | Outcome:
    order = await orders.get_by_order_no(result.order_no)
    if order is None:
        return _unknown_order(gateway, result)
    if (result.payhash is not None and order.tid == result.tid
            and _already_applied(order, _event_of(result))):
        # A reload of a return the order already took: the payhash (verified next, under
        # the lock) is enough for a duplicate, and nothing more. Without one, Payletter
        # is asked as always.
        return _REPEAT
    client_id, order_no, pgcode = order.client_id, order.order_no, order.pgcode
    # Don't hold the database (SQLite's write lock, an open transaction) across HTTP.
    await session.rollback()
    try:
        status = await gateway.payletter.payment_status(client_id, order_no)
    except BusinessRuleError as exc:  # Payletter says no such payment
        return Outcome("rejected", "status_unconfirmed", UNVERIFIED,
                       f"Payletter does not confirm this result: {exc.message}",
                       await orders.get_by_order_no(order_no))
    except PayletterError as exc:
        log.warning("payments/status failed for %s: %s", order_no, exc)
        return Outcome("error", "status_unconfirmed", UNAVAILABLE,
                       "could not confirm the result with Payletter; please redeliver",
                       await orders.get_by_order_no(order_no))
    required = {3, 4, 5} if result.is_account_issuance else _paid_status_codes(pgcode)
    if status.tid != result.tid or status.status_code not in required:
        return Outcome(
            "rejected", "status_unconfirmed", UNVERIFIED,
            f"Payletter does not confirm this result (status_code={status.status_code})",
            await orders.get_by_order_no(order_no))
    return "status_confirmed"


def _paid_status_codes(pgcode: str) -> frozenset[int]:
    # A virtual account is "approved" once issued; only "done" means the money arrived.
    return frozenset({5}) if pgcode == "virtualaccount" else _STATUS_PAID


def _unknown_order(gateway: Gateway, result: PaymentResult) -> Outcome:
    """Keep it on record and say no: an operator must look at money we can't place."""
    verification = "payhash_missing"
    if result.payhash is not None:
        verification = "payhash_bad"
        for merchant in gateway.settings.merchants.values():
            if verify_payhash(result.payhash, user_id=result.user_id or "",
                              amount=result.amount or 0, tid=result.tid or "",
                              payment_key=merchant.payment_key.get_secret_value()):
                verification = "payhash_ok"
    return Outcome("unknown_order", verification, UNKNOWN_ORDER,
                   f"no order {result.order_no!r} here; result stored for review")


def _mismatches(order: Order, result: PaymentResult) -> list[str]:
    problems = []
    if result.amount != order.amount:
        problems.append(f"amount {result.amount} != order amount {order.amount}")
    if result.user_id != order.user_id:
        problems.append(f"user_id {result.user_id!r} != order user_id {order.user_id!r}")
    rule = METHODS.get(order.pgcode)
    if result.pgcode and rule is not None and result.pgcode not in rule.result_pgcodes:
        problems.append(f"pgcode {result.pgcode!r} was not requested ({order.pgcode!r})")
    return problems


async def _apply_success(
    session: AsyncSession, order: Order, tid_holder: str | None, result: PaymentResult,
    verification: str, *, may_change: bool = True,
) -> Outcome:
    """Apply a verified success to the locked `order`; `tid_holder` is the other order
    already holding the result's tid, if any. With `may_change=False` (a repeat that
    Payletter wasn't asked about) anything but a duplicate or a no-op is refused."""
    assert result.tid is not None
    event = _event_of(result)
    if order.tid == result.tid and _already_applied(order, event):
        return Outcome("duplicate", verification, ACK, "already applied", order)

    problems = _mismatches(order, result)
    if order.tid is not None and order.tid != result.tid:
        problems.append(f"a second payment tid {result.tid} for an order paid by {order.tid}")
    if tid_holder is not None:
        problems.append(f"tid {result.tid} already belongs to order {tid_holder}")
    if problems and not may_change:
        return _changed_meanwhile(order)
    if problems:
        reason = "; ".join(problems)
        moved = await transition(session, order, OrderEvent.MISMATCH, reason=reason,
                                 flush=False)
        log.warning("order %s held for review: %s", order.order_no, reason)
        return Outcome("needs_review", verification, NEEDS_REVIEW,
                       f"result does not match the order ({reason}); held for review", order,
                       moved)

    if not can_move(order, event):
        return Outcome("ignored", verification, NEEDS_REVIEW,
                       f"order is {order.status}; result kept on record, not applied", order)
    if not may_change:
        return _changed_meanwhile(order)
    _copy_result(order, result, paid=event is OrderEvent.APPROVED)
    moved = await transition(session, order, event, reason=f"{verification} tid={result.tid}",
                             flush=False)
    if result.billkey and order.autopay_flag == "Y":
        await BillkeyRepository(session).remember(order, result.billkey)
    return Outcome("applied", verification, ACK, "", order, moved)


async def apply_confirmed(
    session: AsyncSession,
    order_no: str,
    *,
    tid: str,
    amount: int,
    user_id: str,
    pgcode: str | None,
    verification: str,
    extra: dict[str, Any] | None = None,
) -> Outcome:
    """Apply a success that Payletter itself reported (payments/status, transaction list).

    The same checks and the same state table as a callback; the caller records the
    evidence in the audit log.
    """
    order, tid_holder = await OrderRepository(session).lock_for_result(order_no, tid)
    if order is None:
        return Outcome("unknown_order", verification, UNKNOWN_ORDER,
                       f"no order {order_no!r} here")
    result = PaymentResult(success=True, order_no=order_no, tid=tid, amount=amount,
                           user_id=user_id, pgcode=pgcode, extra=dict(extra or {}))
    outcome = await _apply_success(session, order, tid_holder, result, verification)
    await session.flush()  # no delivery record follows to flush with
    return outcome


def _changed_meanwhile(order: Order) -> Outcome:
    return Outcome("error", "status_unconfirmed", UNAVAILABLE,
                   "the order changed while this was checked; please retry", order)


def _event_of(result: PaymentResult) -> OrderEvent:
    return OrderEvent.ACCOUNT_ISSUED if result.is_account_issuance else OrderEvent.APPROVED


def _already_applied(order: Order, event: OrderEvent) -> bool:
    after_payment = {OrderStatus.PAID, OrderStatus.PARTIALLY_CANCELLED, OrderStatus.CANCELLED}
    if event is OrderEvent.ACCOUNT_ISSUED:
        after_payment |= {OrderStatus.AWAITING_DEPOSIT}
    return OrderStatus(order.status) in after_payment


def _copy_result(order: Order, result: PaymentResult, *, paid: bool) -> None:
    extra = result.extra
    order.tid = result.tid
    order.cid = _str_or_none(extra.get("cid"), 64)  # the columns' sizes
    order.paid_pgcode = result.pgcode
    order.pay_info = _str_or_none(extra.get("pay_info"))
    order.card_info = _str_or_none(extra.get("card_info"), 32)
    install = str(extra.get("install_month") or "")
    order.install_month = (int(install) if install.isascii() and install.isdigit()
                           and len(install) <= 3 else None)  # "²".isdigit() is True
    order.transaction_date = _payletter_time(extra.get("transaction_date"))
    details = dict(order.payment_details or {})
    if any(k in extra for k in _VA_FIELDS):
        details["virtual_account"] = {k: extra[k] for k in _VA_FIELDS if k in extra}
    if "cash_receipt" in extra:
        details["cash_receipt"] = extra["cash_receipt"]
    order.payment_details = details
    if paid:
        order.paid_at = utcnow()


def _payletter_time(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_payletter_datetime(value).astimezone(UTC)
    except (ValueError, OverflowError):  # "0001-01-01 00:00:00" KST is before year 1 in UTC
        return None


def _str_or_none(value: Any, limit: int = 256) -> str | None:
    return None if value in (None, "") else str(value)[:limit]


async def _apply_failure(
    session: AsyncSession, orders: OrderRepository, result: PaymentResult
) -> Outcome:
    order = await orders.lock_by_order_no(result.order_no)
    assert order is not None  # the signed link check found it
    reason = f"declined: code={result.code} {result.message or ''}".strip()
    if can_move(order, OrderEvent.DECLINED):
        order.last_error = reason
        moved = await transition(session, order, OrderEvent.DECLINED, reason=reason,
                                 flush=False)
        return Outcome("applied", "signature_ok", ACK, "", order, moved)
    return Outcome("ignored", "signature_ok", ACK, f"order is {order.status}; kept on record",
                   order)


async def _buyer_cancel(session: AsyncSession, gateway: Gateway, inbound: Inbound) -> Outcome:
    orders = OrderRepository(session)
    order_no = inbound.link_order_no or ""
    # Straight from the URL: only something that could be an order number reaches a query
    # (PostgreSQL refuses a NUL, and a refused query would read as a database outage).
    plausible = 0 < len(order_no) <= 64 and order_no.isprintable()
    order = await orders.lock_by_order_no(order_no) if plausible else None
    key = gateway.payment_key(order.client_id) if order else None
    if order is None or key is None or not verify_link(
        key, CANCEL_LINK, order.order_no, inbound.link_signature
    ):
        return Outcome("rejected", "signature_bad", UNVERIFIED,
                       "cancel link is not one we issued", order)
    moved = await transition(session, order, OrderEvent.BUYER_CANCELLED,
                             reason="buyer cancelled", flush=False)
    if moved is not None:
        return Outcome("applied", "signature_ok", ACK, "", order, moved)
    return Outcome("ignored", "signature_ok", ACK, f"order is {order.status}; nothing to do",
                   order)


# ---- the record -----------------------------------------------------------------------


def _claimed(inbound: Inbound, name: str) -> str | None:
    """What the body says its order_no / tid is (unverified; for search and logs)."""
    value = inbound.fields.get(name)
    if value is None and name == "order_no":
        value = inbound.link_order_no
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    # Unverified text: keep it searchable but harmless (PostgreSQL refuses NUL, logs hate CR).
    return _printable(str(value), 64)


def _printable(text: str, limit: int) -> str:
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text[:limit])


def delivery_row(inbound: Inbound, outcome: Outcome) -> dict[str, Any]:
    return dict(
        kind=inbound.kind,
        received_at=utcnow(),
        source_addr=inbound.source_addr,
        peer_addr=inbound.peer_addr,
        content_type=_printable(inbound.content_type or "", 128) or None,
        raw_body=inbound.raw_body,
        query_string=inbound.query_string,
        order_no=_claimed(inbound, "order_no"),
        tid=_claimed(inbound, "tid"),
        order_id=outcome.order.id if outcome.order is not None else None,
        verification=outcome.verification,
        outcome=outcome.outcome,
        detail=outcome.message or None,
        response_code=outcome.code,
    )


async def record(session: AsyncSession, inbound: Inbound, outcome: Outcome) -> None:
    """Store the delivery with what it did (and link the state change it caused)."""
    outcome.delivery_id = await DeliveryRepository(session).insert(delivery_row(inbound, outcome))
    if outcome.transition is not None:
        outcome.transition.delivery_id = outcome.delivery_id
    await session.flush()  # the state change this delivery caused, with its id, if any


async def replay_delivery(session: AsyncSession, gateway: Gateway, delivery_id: int) -> Outcome:
    """Run a stored delivery through verification and apply again (an operator's retry).

    The same checks as the first time (payhash, signed link, order match); idempotent, so a
    delivery that was applied comes out as a duplicate. Recorded as a new delivery.
    """
    stored = await DeliveryRepository(session).get(delivery_id)
    if stored is None:
        raise NotFound(f"no delivery {delivery_id}")
    query = dict(parse_qsl(stored.query_string or ""))
    try:
        fields = parse_fields(stored.raw_body.encode(), stored.content_type) if stored.raw_body \
            else {}
    except BodyError:
        fields = {}
    inbound = Inbound(
        kind=stored.kind,  # type: ignore[arg-type]
        fields=fields, raw_body=stored.raw_body, content_type=stored.content_type,
        source_addr=stored.source_addr, peer_addr="replay",
        link_order_no=query.get("order_no"), link_signature=query.get("sig"),
        query_string=stored.query_string,
    )
    return await receive(session, gateway, inbound)
