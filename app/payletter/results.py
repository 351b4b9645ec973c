"""Results Payletter sends: the callback (JSON) and the buyer's return (form fields).

Parsing only: what the fields say, type-checked, nothing believed yet. Whether a result is
genuine (payhash, payments/status) and what it does to an order is the gateway's
(`app.payments.service`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

MAX_AMOUNT = 10**12  # far above any real payment; larger numbers are garbage, not money
# A virtual account's fields in a result (its issue; kept in the order's payment_details).
ACCOUNT_FIELDS = ("account_no", "account_name", "account_holder", "bank_code", "bank_name",
              "issue_tid", "expire_date", "expire_time")


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
    def has_account_fields(self) -> bool:
        return any(name in self.extra for name in ACCOUNT_FIELDS)

    def without_account_fields(self) -> PaymentResult:
        extra = {k: v for k, v in self.extra.items() if k not in ACCOUNT_FIELDS}
        return replace(self, extra=extra)

    def as_confirmed(self, amount: int, user_id: str, pgcode: str) -> PaymentResult:
        """A result without payhash, once Payletter confirmed the order's payment: nothing
        in the body proved amount, user or method, so they are the order's own (Payletter
        took the payment at the amount requested for that order_no)."""
        return replace(self, amount=amount, user_id=user_id, pgcode=pgcode)


def parse_result(fields: Mapping[str, Any], *, from_return: bool) -> PaymentResult:
    """A callback's or a return's fields as a PaymentResult, or MalformedResult saying what
    is wrong."""
    order_no = _text(fields, "order_no", required=True, max_len=64)
    assert order_no is not None
    code = _text(fields, "code", max_len=16) if "code" in fields else None
    # Callbacks are sent on success only; a return says so with code "0".
    success = not from_return or code == "0"
    if from_return and code is None:
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
            "install_month", "taxfree_amount", "tax_amount", *ACCOUNT_FIELDS)
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
    return printable(value, 256)


def printable(text: str, limit: int) -> str:
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text[:limit])
