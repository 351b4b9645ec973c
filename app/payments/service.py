"""Where a payment result is verified and applied: one path for callback and return alike.

    parse → verify (payhash; Payletter's payments/status when there is none, and for
            every buyer's return, since payhash doesn't name the order)
          → lock the order → match (order_no, amount, user_id, method, tid)
          → apply through the state table → record the delivery → flush

The caller's session commits once, after this returns; only then may the callback answer
code 0. On PostgreSQL a signed callback first tries `receive_signed_callback`: the same
checks and writes as one statement, committed by itself; it settles only the plain cases
(applied, duplicate) and hands everything else here with nothing written.

A result changes an order at most once: the order row is locked (SQLite: BEGIN
IMMEDIATE), a tid already on the order is a duplicate, and a tid is unique across orders.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.repository import BillkeyRepository
from app.db import commit_before_call, utcnow
from app.errors import NotFound
from app.gateway import Gateway
from app.kit.bodies import BodyError, parse_fields
from app.kit.security import verify_link
from app.metrics import TRUNCATED_DELIVERIES
from app.models import Order, OrderTransition
from app.orders.repository import OrderRepository
from app.orders.service import CANCEL_LINK, RETURN_LINK, link_verifies
from app.orders.states import PAID_STATES, TRANSITIONS, OrderEvent, OrderStatus
from app.orders.transitions import can_move, transition
from app.payletter.errors import BusinessRuleError, PayletterError
from app.payletter.methods import METHODS, paid_status_codes
from app.payletter.models import parse_payletter_datetime
from app.payletter.payhash import verify_payhash
from app.payletter.results import (
    ACCOUNT_FIELDS,
    MalformedResult,
    PaymentResult,
    parse_result,
    printable,
)
from app.payments.repository import DeliveryRepository, apply_signed_callback
from app.webhooks.outbox import iso_utc, new_event_id

log = logging.getLogger(__name__)

Kind = Literal["callback", "return", "cancel"]
BillkeyTrust = Literal["verified", "unverified"]
UNSIGNED_HEAD_CHARS = 1024  # what is kept of an anonymous browser delivery's body and query

# Answer codes (0 = acknowledged). Mirrors the HTTP status we send with them.
ACK, MALFORMED, UNVERIFIED, UNKNOWN_ORDER, NEEDS_REVIEW, UNAVAILABLE = 0, 400, 401, 404, 409, 503

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
    body_bytes: int | None = None  # what arrived, before decoding
    body_sha256: str | None = None
    # The return/cancel URL's signature is one we made (for any merchant): only then is a
    # browser's delivery kept whole; anything else is anonymous and kept as a head only.
    link_signed: bool = False


@dataclass
class Outcome:
    outcome: str  # applied, duplicate, needs_review, unknown_order, rejected, ignored, error
    verification: str
    code: int
    message: str
    order: Order | None = None
    transition: OrderTransition | None = None
    delivery_id: int | None = None  # set once the delivery is recorded


# ---- the operation --------------------------------------------------------------------


async def receive(session: AsyncSession, gateway: Gateway, inbound: Inbound) -> Outcome:
    """Verify and apply one delivery, record it, flush. The caller commits."""
    if inbound.kind == "cancel":
        outcome = await _buyer_cancel(session, gateway, inbound)
    else:
        try:
            result = parse_result(inbound.fields, from_return=inbound.kind == "return")
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


# The states a verified approval moves to paid (the table's rows, read once).
_APPROVABLE = sorted(s.value for (s, e), to in TRANSITIONS.items() if e is OrderEvent.APPROVED)
assert all(to is OrderStatus.PAID for (_, e), to in TRANSITIONS.items()
           if e is OrderEvent.APPROVED), "apply_signed_callback writes 'paid'"
_PAID = sorted(s.value for s in PAID_STATES)


async def receive_signed_callback(gateway: Gateway, inbound: Inbound) -> Outcome | None:
    """A callback's fast path on PostgreSQL: the same checks and writes as `receive`, in one
    statement (`apply_signed_callback`), committed when this returns. None when it is not
    the plain case (no payhash, a billkey or an account to keep, a mismatch, an unknown
    order, a wrong key, …): nothing was written, and `receive` takes it from there."""
    try:
        result = parse_result(inbound.fields, from_return=False)
    except MalformedResult:
        return None
    if result.payhash is None or result.billkey or result.has_account_fields:
        return None
    assert result.tid is not None
    assert result.amount is not None
    assert result.user_id is not None
    verified = [client_id for client_id, merchant in gateway.settings.merchants.items()
                if verify_payhash(result.payhash, user_id=result.user_id, amount=result.amount,
                                  tid=result.tid, payment_key=merchant.payment_key
                                  .get_secret_value())]
    if not verified:
        return None
    refused_pgcodes = [code for code, rule in METHODS.items()
                       if result.pgcode and result.pgcode not in rule.result_pgcodes]
    columns = paid_columns(result)
    details = {"cash_receipt": result.extra["cash_receipt"]} \
        if "cash_receipt" in result.extra else {}
    row = delivery_row(inbound, Outcome("", "", ACK, ""))
    now = row["received_at"]
    event_id = new_event_id()
    outcome, delivery_id = await apply_signed_callback(
        gateway.engine, result.order_no, result.tid, result.amount, result.user_id,
        refused_pgcodes, verified, _PAID, _APPROVABLE, now,
        columns["cid"], columns["paid_pgcode"], columns["pay_info"], columns["card_info"],
        columns["install_month"], columns["transaction_date"], json.dumps(details),
        f"payhash_ok tid={result.tid}", event_id, iso_utc(now),
        *(row[name] for name in DELIVERY_COLUMNS))
    if outcome == "fallback":
        return None
    log.info("callback delivery order_no=%s tid=%s verification=payhash_ok outcome=%s code=0",
             row["order_no"], row["tid"], outcome)
    message = "already applied" if outcome == "duplicate" else ""
    return Outcome(outcome, "payhash_ok", ACK, message, delivery_id=delivery_id)


async def _handle_result(
    session: AsyncSession, gateway: Gateway, inbound: Inbound, result: PaymentResult
) -> Outcome:
    orders = OrderRepository(session)
    verification, event, repeat_only = "payhash_ok", OrderEvent.APPROVED, False
    # A signed callback goes straight to the lock; everything else needs the order first
    # (the return's link, the method's rules, what to ask Payletter).
    checked = inbound.kind != "callback" or not result.success or result.payhash is None
    if checked:
        order = await orders.get_by_order_no(result.order_no)
        if order is None:
            return _unknown_order(gateway, result)
        if inbound.kind == "return" and not _return_link_ok(gateway, inbound, order):
            return Outcome("rejected", "signature_bad", UNVERIFIED,
                           "return does not match the signed return URL of this order", order)
        if not result.success:
            return await _apply_failure(session, orders, result)
        fitted = _fit_to_method(inbound, order, result)
        if isinstance(fitted, Outcome):
            return fitted
        result = fitted
        # Without a payhash nothing in the body proves the result: Payletter's
        # payments/status decides whether it happened and what it is (issued account or
        # money in). A return's payhash proves less than it seems: it covers
        # user_id+amount+tid, not order_no, so a twin order's (same amount and buyer)
        # unapplied result would verify on this order's return URL. Only Payletter can say
        # which order a tid paid; the callback, from Payletter's own addresses, needs no
        # such question.
        if result.payhash is None:  # read now: asking Payletter expires the loaded order
            result = result.as_confirmed(order.amount, order.user_id, order.pgcode)
        confirmed = await _confirm_with_payletter(session, gateway, orders, order, result)
        if isinstance(confirmed, Outcome):
            return confirmed
        verification, event = confirmed
        repeat_only = verification == _REPEAT
    assert result.tid is not None
    locked, tid_holder = await orders.lock_for_result(result.order_no, result.tid)
    if locked is None:
        return _unknown_order(gateway, result)
    if not checked:
        fitted = _fit_to_method(inbound, locked, result)
        if isinstance(fitted, Outcome):
            return fitted
        result = fitted
    if result.payhash is not None:
        key = gateway.payment_key(locked.client_id)
        ok = key is not None and verify_payhash(
            result.payhash, user_id=result.user_id or "", amount=result.amount or 0,
            tid=result.tid or "", payment_key=key)
        if not ok:
            return Outcome("rejected", "payhash_bad", UNVERIFIED,
                           "payhash does not verify; result refused", locked)
    # Payletter wasn't asked about a repeat: it may be answered, but change nothing.
    return await _apply_success(session, locked, tid_holder, result, verification, event,
                                may_change=not repeat_only,
                                billkey_from=_billkey_source(inbound, locked))


def _fit_to_method(inbound: Inbound, order: Order, result: PaymentResult
                   ) -> PaymentResult | Outcome:
    """The result as the order's method allows it, or why it is refused: a method that
    sends a payhash must have one, and virtual-account fields belong to virtual accounts."""
    rule = METHODS.get(order.pgcode)
    if result.has_account_fields and not (rule and rule.deposit_later):
        if inbound.kind != "callback":  # the buyer's browser: edited, not Payletter's
            return Outcome("rejected", "malformed", MALFORMED,
                           f"virtual-account fields in a {order.pgcode} result; refused", order)
        result = result.without_account_fields()  # Payletter's own: never let them decide
    if result.payhash is None and (rule is None or rule.sends_payhash):
        return Outcome("rejected", "payhash_missing", UNVERIFIED,
                       f"{order.pgcode} results carry a payhash and this one has none; "
                       "refused", order)
    return result


def _return_link_ok(gateway: Gateway, inbound: Inbound, order: Order) -> bool:
    """A return must come back through the signed URL of the same order."""
    return (inbound.link_order_no == order.order_no
            and link_verifies(gateway, RETURN_LINK, order, inbound.link_signature))


def link_signed(gateway: Gateway, kind: Kind, order_no: str | None, signature: str | None
                ) -> bool:
    """Whether a return/cancel URL carries a signature we made, with any merchant's key
    (no database needed: the link names its order_no)."""
    purpose = {"return": RETURN_LINK, "cancel": CANCEL_LINK}.get(kind)
    if purpose is None or not order_no or not signature:
        return False
    return any(verify_link(m.payment_key.get_secret_value(), purpose, order_no, signature)
               for m in gateway.settings.merchants.values())


def _billkey_source(inbound: Inbound, order: Order) -> BillkeyTrust | None:
    """How far a result's billkey may be believed (payhash doesn't cover it).

    The callback comes from Payletter's own addresses: verified. A return is the buyer's
    browser, which can edit it: ignored when a callback will follow (money moved), and kept
    as unverified only for an amount-0 registration, which gets no callback; the first
    successful charge verifies it.
    """
    if order.autopay_flag != "Y":
        return None
    if inbound.kind == "callback":
        return "verified"
    return "unverified" if order.amount == 0 else None


async def _confirm_with_payletter(
    session: AsyncSession, gateway: Gateway, orders: OrderRepository, order: Order,
    result: PaymentResult,
) -> tuple[str, OrderEvent] | Outcome:
    """Ask payments/status about the order; what it confirms, as (verification, event)."""
    if (result.payhash is not None and order.tid == result.tid
            and _already_applied(order, OrderEvent.APPROVED)):
        # A reload of a return the order already took: the payhash (verified next, under
        # the lock) is enough for a duplicate, and nothing more. Without one, Payletter
        # is asked as always.
        return _REPEAT, OrderEvent.APPROVED
    client_id, order_no, pgcode = order.client_id, order.order_no, order.pgcode
    await commit_before_call(session)  # nothing written yet; no lock held across HTTP
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
    event = _confirmed_event(status.status_code, pgcode, result)
    if status.tid != result.tid or event is None:
        return Outcome(
            "rejected", "status_unconfirmed", UNVERIFIED,
            f"Payletter does not confirm this result (status_code={status.status_code})",
            await orders.get_by_order_no(order_no))
    return "status_confirmed", event


def _confirmed_event(status_code: int, pgcode: str, result: PaymentResult
                     ) -> OrderEvent | None:
    """What Payletter's status says happened: the money in, an account issued, or neither.
    Decided by Payletter's answer, never by which fields the body happens to carry."""
    if status_code in paid_status_codes(pgcode):
        return OrderEvent.APPROVED
    rule = METHODS.get(pgcode)
    if rule and result.has_account_fields and status_code in rule.account_issued_status_codes:
        return OrderEvent.ACCOUNT_ISSUED
    return None


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
    verification: str, event: OrderEvent, *, may_change: bool = True,
    billkey_from: BillkeyTrust | None = None,
) -> Outcome:
    """Apply a verified success (`event`: the money in, or a virtual account issued) to the
    locked `order`; `tid_holder` is the other order already holding the result's tid, if
    any. With `may_change=False` (a repeat that Payletter wasn't asked about) anything but a
    duplicate or a no-op is refused. `billkey_from` says whether the result's billkey may be
    stored, and as what."""
    assert result.tid is not None
    if order.tid == result.tid and _already_applied(order, event):
        # The callback's billkey still counts when the buyer's return got here first.
        await _remember_billkey(session, order, result, billkey_from)
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
    await _remember_billkey(session, order, result, billkey_from)
    return Outcome("applied", verification, ACK, "", order, moved)


async def _remember_billkey(session: AsyncSession, order: Order, result: PaymentResult,
                            trust: BillkeyTrust | None) -> None:
    if result.billkey and trust is not None:
        await BillkeyRepository(session).remember(order, result.billkey,
                                                  verified=trust == "verified")


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
    outcome = await _apply_success(session, order, tid_holder, result, verification,
                                   OrderEvent.APPROVED)
    await session.flush()  # no delivery record follows to flush with
    return outcome


def _changed_meanwhile(order: Order) -> Outcome:
    return Outcome("error", "status_unconfirmed", UNAVAILABLE,
                   "the order changed while this was checked; please retry", order)


def _already_applied(order: Order, event: OrderEvent) -> bool:
    status = OrderStatus(order.status)
    return status in PAID_STATES or (event is OrderEvent.ACCOUNT_ISSUED
                                     and status is OrderStatus.AWAITING_DEPOSIT)


def paid_columns(result: PaymentResult) -> dict[str, Any]:
    """The order's columns a verified success sets, from Payletter's result (sized to fit)."""
    extra = result.extra
    install = str(extra.get("install_month") or "")
    return {
        "cid": _str_or_none(extra.get("cid"), 64),
        "paid_pgcode": result.pgcode,
        "pay_info": _str_or_none(extra.get("pay_info")),
        "card_info": _str_or_none(extra.get("card_info"), 32),
        # "²".isdigit() is True
        "install_month": (int(install) if install.isascii() and install.isdigit()
                          and len(install) <= 3 else None),
        "transaction_date": _payletter_time(extra.get("transaction_date")),
    }


def _copy_result(order: Order, result: PaymentResult, *, paid: bool) -> None:
    extra = result.extra
    order.tid = result.tid
    for name, value in paid_columns(result).items():
        setattr(order, name, value)
    details = dict(order.payment_details or {})
    if any(k in extra for k in ACCOUNT_FIELDS):
        details["virtual_account"] = {k: extra[k] for k in ACCOUNT_FIELDS if k in extra}
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
    if order is None or not link_verifies(gateway, CANCEL_LINK, order, inbound.link_signature):
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
    return printable(str(value), 64)


def keeps_whole(inbound: Inbound) -> bool:
    """Payletter's callbacks (address-checked) and browser deliveries on a link we signed
    are evidence, kept whole; an anonymous post is kept as its head, size and digest, so
    strangers can't fill the disk."""
    return inbound.kind == "callback" or inbound.link_signed


# What a delivery row takes from the delivery itself (the rest says what it did).
DELIVERY_COLUMNS = ("kind", "received_at", "source_addr", "peer_addr", "content_type",
                    "raw_body", "body_bytes", "body_sha256", "query_string", "order_no", "tid")


def delivery_row(inbound: Inbound, outcome: Outcome) -> dict[str, Any]:
    whole = keeps_whole(inbound)
    return dict(
        kind=inbound.kind,
        received_at=utcnow(),
        source_addr=inbound.source_addr,
        peer_addr=inbound.peer_addr,
        content_type=printable(inbound.content_type or "", 128) or None,
        raw_body=inbound.raw_body if whole else inbound.raw_body[:UNSIGNED_HEAD_CHARS],
        body_bytes=inbound.body_bytes,
        body_sha256=inbound.body_sha256,
        query_string=(inbound.query_string if whole or inbound.query_string is None
                      else inbound.query_string[:UNSIGNED_HEAD_CHARS]),
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
    row = delivery_row(inbound, outcome)
    outcome.delivery_id = await DeliveryRepository(session).insert(row)
    if row["raw_body"] is not inbound.raw_body:
        TRUNCATED_DELIVERIES.labels(kind=inbound.kind).inc()
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
    kind: Kind = stored.kind  # type: ignore[assignment]
    inbound = Inbound(
        kind=kind, fields=fields, raw_body=stored.raw_body, content_type=stored.content_type,
        source_addr=stored.source_addr, peer_addr="replay",
        link_order_no=query.get("order_no"), link_signature=query.get("sig"),
        query_string=stored.query_string, body_bytes=stored.body_bytes,
        body_sha256=stored.body_sha256,
        link_signed=link_signed(gateway, kind, query.get("order_no"), query.get("sig")),
    )
    return await receive(session, gateway, inbound)
