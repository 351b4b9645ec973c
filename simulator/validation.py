"""Field checks for the Payletter calls, per the vendor's request-parameter tables.

Each `parse_*` takes the decoded JSON object and returns a typed request or raises a
406 PayletterError naming the field and the rule. Sizes are counted in characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from simulator.errors import BizCode, business
from simulator.rules import MethodRules, rules_for, rules_for_result, tax_amount_default

Body = dict[str, Any]

# Sizes from the vendor's tables.
SIZES: dict[str, int] = {
    "pgcode": 20,
    "client_id": 20,
    "service_name": 20,
    "user_id": 50,
    "user_name": 20,
    "order_no": 40,
    "product_name": 120,
    "email_flag": 1,
    "email_addr": 100,
    "autopay_flag": 1,
    "receipt_flag": 1,
    "keyin_flag": 1,
    "custom_parameter": 1024,
    "return_url": 256,
    "callback_url": 256,
    "cancel_url": 256,
    "inapp_flag": 1,
    "app_return_url": 256,
    "app_cancel_url": 256,
    "expire_date": 8,
    "expire_time": 4,
    "company_name_flag": 1,
    "billkey": 40,
    "ip_addr": 30,
    "tid": 40,
    "date": 8,
    "date_type": 20,
    "type": 1,
    "tax_flag": 1,
}
AUTOPAY_ORDER_NO_SIZE = 50  # order_no is 50 on payments/autopay, 40 elsewhere

YN_FLAGS = (
    "email_flag", "autopay_flag", "receipt_flag", "keyin_flag", "inapp_flag",
    "company_name_flag",
)


def _present(body: Body, name: str) -> bool:
    value = body.get(name)
    return value is not None and value != ""


def require(body: Body, *names: str) -> None:
    for name in names:
        if not _present(body, name):
            raise business(BizCode.MISSING_FIELD, f"{name} is required")


def text(body: Body, name: str, *, size: int | None = None, required: bool = False) -> str:
    """A string field ('' when absent), length-checked against the vendor's size."""
    if required:
        require(body, name)
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise business(BizCode.INVALID_VALUE, f"{name} must be a string")
    limit = size if size is not None else SIZES.get(name)
    if limit is not None and len(value) > limit:
        raise business(
            BizCode.FIELD_TOO_LONG, f"{name} is longer than {limit} characters ({len(value)})"
        )
    return value


def integer(body: Body, name: str, *, required: bool = False) -> int | None:
    """A whole-won amount: a JSON integer (the vendor's type is number), never negative."""
    if required:
        require(body, name)
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise business(BizCode.INVALID_VALUE, f"{name} must be a whole number of won")
    if value < 0:
        raise business(BizCode.INVALID_VALUE, f"{name} must not be negative")
    return value


def yn_flag(body: Body, name: str) -> bool:
    value = text(body, name)
    if value not in ("", "Y", "N"):
        raise business(BizCode.INVALID_VALUE, f"{name} must be 'Y' or 'N'")
    return value == "Y"


def url(body: Body, name: str, *, required: bool = False) -> str:
    value = text(body, name, required=required)
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise business(BizCode.INVALID_VALUE, f"{name} must be an absolute http(s) URL")
    return value


def _forbidden_character(value: str) -> str | None:
    for char in value:
        if char in "<>":
            return char
        # Cc covers CR, LF, TAB and the rest; line/paragraph separators break lines too.
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return repr(char)
    return None


def product_name(body: Body) -> str:
    value = text(body, "product_name", required=True)
    bad = _forbidden_character(value)
    if bad is not None:
        raise business(
            BizCode.FORBIDDEN_CHARACTERS,
            f"product_name must not contain <, > or control characters (found {bad})",
        )
    return value


def method(
    body: Body, *, required: bool = True, result_codes: bool = False
) -> MethodRules | None:
    """The pgcode's rules; later calls may also name a result pgcode such as navercard."""
    code = text(body, "pgcode", required=required)
    if not code:
        return None
    rules = rules_for_result(code) if result_codes else rules_for(code)
    if rules is None:
        raise business(BizCode.UNKNOWN_PGCODE, f"unknown pgcode: {code}")
    return rules


@dataclass(frozen=True)
class Amounts:
    amount: int
    taxfree_amount: int
    tax_amount: int
    disposable_cup_deposit: int


def amounts(body: Body, *, amount_required: bool, cup_deposit_allowed: bool) -> Amounts:
    amount = integer(body, "amount", required=amount_required) or 0
    taxfree = integer(body, "taxfree_amount") or 0
    if taxfree > amount:
        raise business(BizCode.INVALID_VALUE, "taxfree_amount must not exceed amount")
    tax = integer(body, "tax_amount")
    if tax is None:
        tax = tax_amount_default(amount, taxfree)
    cup = integer(body, "disposable_cup_deposit") or 0
    if cup and not cup_deposit_allowed:
        raise business(
            BizCode.INVALID_VALUE, "disposable_cup_deposit is not available for this pgcode"
        )
    if cup > amount:
        raise business(BizCode.INVALID_VALUE, "disposable_cup_deposit must not exceed amount")
    return Amounts(amount, taxfree, tax, cup)


@dataclass(frozen=True)
class PaymentRequest:
    rules: MethodRules
    client_id: str
    user_id: str
    user_name: str
    service_name: str
    order_no: str
    amounts: Amounts
    amount_given: bool
    product_name: str
    email_flag: bool
    email_addr: str
    autopay: bool
    receipt_flag: bool
    custom_parameter: str
    return_url: str
    callback_url: str
    cancel_url: str
    expire_date: str
    expire_time: str


def _expire_fields(body: Body) -> tuple[str, str]:
    expire_date = text(body, "expire_date")
    if expire_date:
        try:
            datetime.strptime(expire_date, "%Y%m%d")
        except ValueError:
            raise business(BizCode.INVALID_VALUE, "expire_date must be YYYYMMDD") from None
    expire_time = text(body, "expire_time")
    if expire_time and not re.fullmatch(r"([01]\d|2[0-3])[0-5]\d", expire_time):
        raise business(BizCode.INVALID_VALUE, "expire_time must be HHMM")
    return expire_date, expire_time


def parse_payment_request(body: Body, *, zero_amount_registration: bool) -> PaymentRequest:
    rules = method(body)
    assert rules is not None  # required=True
    client_id = text(body, "client_id", required=True)
    user_id = text(body, "user_id", required=True)
    name = product_name(body)
    return_url = url(body, "return_url", required=True)
    callback_url = url(body, "callback_url", required=True)
    cancel_url = url(body, "cancel_url")
    for optional_url in ("app_return_url", "app_cancel_url"):
        text(body, optional_url)
    service_name = text(body, "service_name")
    if rules.requires_service_name and not service_name:
        raise business(
            BizCode.SERVICE_NAME_REQUIRED, f"service_name is required for pgcode {rules.pgcode}"
        )
    flags = {flag: yn_flag(body, flag) for flag in YN_FLAGS}
    email_addr = text(body, "email_addr")
    expire_date, expire_time = _expire_fields(body)
    amount_given = _present(body, "amount")
    money = amounts(
        body, amount_required=not rules.amount_optional, cup_deposit_allowed=rules.cup_deposit
    )
    autopay = flags["autopay_flag"]
    if autopay and not rules.autopay:
        raise business(
            BizCode.AUTOPAY_NOT_SUPPORTED, f"pgcode {rules.pgcode} does not support autopay"
        )
    billkey_only = autopay and money.amount == 0 and zero_amount_registration
    if amount_given and not billkey_only and money.amount < rules.min_amount:
        raise business(
            BizCode.AMOUNT_BELOW_MINIMUM,
            f"amount {money.amount} is below the minimum {rules.min_amount} for {rules.pgcode}",
        )
    return PaymentRequest(
        rules=rules,
        client_id=client_id,
        user_id=user_id,
        user_name=text(body, "user_name"),
        service_name=service_name,
        order_no=text(body, "order_no"),
        amounts=money,
        amount_given=amount_given,
        product_name=name,
        email_flag=flags["email_flag"],
        email_addr=email_addr,
        autopay=autopay,
        receipt_flag=flags["receipt_flag"],
        custom_parameter=text(body, "custom_parameter"),
        return_url=return_url,
        callback_url=callback_url,
        cancel_url=cancel_url,
        expire_date=expire_date,
        expire_time=expire_time,
    )


@dataclass(frozen=True)
class AutopayRequest:
    rules: MethodRules
    client_id: str
    user_id: str
    user_name: str
    service_name: str
    order_no: str
    amounts: Amounts
    product_name: str
    billkey: str
    ip_addr: str


def parse_autopay_request(body: Body) -> AutopayRequest:
    rules = method(body)
    assert rules is not None
    client_id = text(body, "client_id", required=True)
    user_id = text(body, "user_id", required=True)
    name = product_name(body)
    billkey = text(body, "billkey", required=True)
    ip_addr = text(body, "ip_addr", required=True)
    money = amounts(body, amount_required=True, cup_deposit_allowed=rules.autopay_cup_deposit)
    if not rules.autopay:
        raise business(
            BizCode.AUTOPAY_NOT_SUPPORTED, f"pgcode {rules.pgcode} does not support autopay"
        )
    if money.amount < rules.min_amount:
        raise business(
            BizCode.AMOUNT_BELOW_MINIMUM,
            f"amount {money.amount} is below the minimum {rules.min_amount} for {rules.pgcode}",
        )
    return AutopayRequest(
        rules=rules,
        client_id=client_id,
        user_id=user_id,
        user_name=text(body, "user_name"),
        service_name=text(body, "service_name"),
        order_no=text(body, "order_no", size=AUTOPAY_ORDER_NO_SIZE),
        amounts=money,
        product_name=name,
        billkey=billkey,
        ip_addr=ip_addr,
    )


@dataclass(frozen=True)
class CancelRequest:
    pgcode: str  # optional on a full cancel: '' when absent
    client_id: str
    user_id: str
    tid: str
    ip_addr: str
    # Partial cancels only.
    amount: int = 0
    taxfree_amount: int = 0
    tax_amount: int = 0


def parse_cancel_request(body: Body) -> CancelRequest:
    method(body, required=False, result_codes=True)
    return CancelRequest(
        pgcode=text(body, "pgcode"),
        client_id=text(body, "client_id", required=True),
        user_id=text(body, "user_id", required=True),
        tid=text(body, "tid", required=True),
        ip_addr=text(body, "ip_addr", required=True),
    )


def parse_partial_cancel_request(body: Body) -> CancelRequest:
    method(body, result_codes=True)
    client_id = text(body, "client_id", required=True)
    user_id = text(body, "user_id", required=True)
    tid = text(body, "tid", required=True)
    ip_addr = text(body, "ip_addr", required=True)
    money = amounts(body, amount_required=True, cup_deposit_allowed=False)
    if money.amount < 1:
        raise business(BizCode.INVALID_VALUE, "amount must be at least 1")
    return CancelRequest(
        pgcode=text(body, "pgcode"),
        client_id=client_id,
        user_id=user_id,
        tid=tid,
        ip_addr=ip_addr,
        amount=money.amount,
        taxfree_amount=money.taxfree_amount,
        tax_amount=money.tax_amount,
    )


@dataclass(frozen=True)
class CashReceiptRequest:
    client_id: str
    type: str
    tax_flag: str
    return_url: str


def parse_cash_receipt_request(body: Body) -> CashReceiptRequest:
    client_id = text(body, "client_id", required=True)
    receipt_type = text(body, "type") or "0"
    if receipt_type not in ("0", "1", "2"):
        raise business(BizCode.INVALID_VALUE, "type must be 0, 1 or 2")
    tax_flag = text(body, "tax_flag") or "N"
    if tax_flag not in ("Y", "N"):
        raise business(BizCode.INVALID_VALUE, "tax_flag must be 'Y' or 'N'")
    return CashReceiptRequest(
        client_id=client_id,
        type=receipt_type,
        tax_flag=tax_flag,
        return_url=url(body, "return_url", required=True),
    )


@dataclass(frozen=True)
class StatusRequest:
    client_id: str
    order_no: str


def parse_status_request(body: Body) -> StatusRequest:
    return StatusRequest(
        client_id=text(body, "client_id", required=True),
        order_no=text(body, "order_no", required=True),
    )


@dataclass(frozen=True)
class ListQuery:
    client_id: str
    day: date
    date_type: str
    pgcode: str


def parse_list_query(query: Body) -> ListQuery:
    client_id = text(query, "client_id", required=True)
    raw_date = text(query, "date", required=True)
    date_type = text(query, "date_type", required=True)
    if not re.fullmatch(r"\d{8}", raw_date):
        raise business(BizCode.INVALID_VALUE, "date must be YYYYMMDD")
    try:
        day = datetime.strptime(raw_date, "%Y%m%d").date()
    except ValueError:
        raise business(BizCode.INVALID_VALUE, "date must be a real YYYYMMDD date") from None
    if date_type not in ("transaction", "settle"):
        raise business(BizCode.INVALID_VALUE, "date_type must be 'transaction' or 'settle'")
    method(query, required=False, result_codes=True)
    return ListQuery(client_id, day, date_type, text(query, "pgcode"))
