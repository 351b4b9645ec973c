"""Request and response models for Payletter's API (vendor page: reference/payletter-api-ko.txt).

Request models enforce the vendor's field rules so a bad request is refused here, with a
field name and reason, instead of by Payletter. Response models are lenient about extra
fields but strict about what we act on (amounts, dates, status codes).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
import unicodedata
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.kit.korea_time import KST, korea_date
from app.payletter.errors import PayletterValidationError
from app.payletter.methods import (
    AUTOPAY_CUP_DEPOSIT_PGCODES,
    METHODS,
    MethodRule,
    default_tax_amount,
    requested_pgcode_for_result,
)

# ---------------------------------------------------------------------------------------
# Dates and times: Payletter's zone-less values are Korea time.

_DASHED_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_COMPACT_DATETIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})")
_COMPACT_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")


def parse_payletter_datetime(value: str) -> datetime:
    """'YYYY-MM-DD HH:MM:SS' or 'YYYYMMDDHHMMSS' (Korea time) → aware datetime in +09:00."""
    if not isinstance(value, str):
        raise ValueError("a Payletter date-time must be a string")
    text = value.strip()
    match = _DASHED_DATETIME.fullmatch(text) or _COMPACT_DATETIME.fullmatch(text)
    if match is None:
        raise ValueError("expected 'YYYY-MM-DD HH:MM:SS' or 'YYYYMMDDHHMMSS'")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=KST)


def parse_payletter_date(value: str) -> date:
    """'YYYYMMDD' → date (a Korea-time calendar day)."""
    match = _COMPACT_DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError("expected 'YYYYMMDD'")
    year, month, day = (int(part) for part in match.groups())
    return date(year, month, day)


def format_payletter_date(d: date) -> str:
    day = korea_date(d)
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


# ---------------------------------------------------------------------------------------
# Turning validation failures into PayletterValidationError.

_RULE_ERROR = "payletter_rule"


def _rule_error(field: str, reason: str) -> PydanticCustomError:
    """A pydantic error that remembers which request field broke which vendor rule."""
    return PydanticCustomError(_RULE_ERROR, "{reason}", {"field": field, "reason": reason})


def to_payletter_validation_error(exc: ValidationError) -> PayletterValidationError:
    """First problem as (field, reason); never copies the rejected input (it may be a key)."""
    errors = exc.errors(include_input=False, include_url=False)
    if not errors:
        return PayletterValidationError(None, "invalid request")
    first = errors[0]
    ctx = first.get("ctx") or {}
    # A field's own check has a location; a model-level rule names its field in ctx.
    field = ".".join(str(part) for part in first["loc"]) or None
    if field is None and ctx.get("field"):
        field = str(ctx["field"])
    reason = str(ctx["reason"]) if first["type"] == _RULE_ERROR else first["msg"]
    more = len(errors) - 1
    if more:
        reason = f"{reason} (and {more} more problem{'s' if more > 1 else ''})"
    return PayletterValidationError(field, reason)


RequestT = TypeVar("RequestT", bound="PayletterRequest")


def build_request(model_cls: type[RequestT], /, **fields: Any) -> RequestT:
    """Construct a request model, raising PayletterValidationError instead of pydantic's."""
    try:
        return model_cls.model_validate(fields)
    except ValidationError as exc:
        raise to_payletter_validation_error(exc) from None


def revalidate(request: RequestT, **changes: Any) -> RequestT:
    """Re-run every rule (after ``changes``): catches model_construct() and model_copy()."""
    missing = object()  # model_construct() may have left a required field unset
    data = {
        name: value
        for name in type(request).model_fields
        if (value := getattr(request, name, missing)) is not missing
    }
    data.update(changes)
    return build_request(type(request), **data)


# ---------------------------------------------------------------------------------------
# Field types.


def _check_web_url(value: str) -> str:
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise _rule_error("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise _rule_error("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _rule_error("url", "must be an absolute http(s) URL")
    return value


def _check_app_url(value: str) -> str:
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise _rule_error("url", "must not contain spaces or control characters")
    return value


def _check_ip_addr(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _rule_error("ip_addr", "must be an IPv4 or IPv6 address") from None
    return value


# U+2028/2029 act as line breaks; bidi overrides/isolates can disguise what a buyer reads.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _check_product_name(value: str) -> str:
    """Vendor: no '<', '>', carriage return/newline or other control characters."""
    for ch in value:
        if ch in "<>":
            raise _rule_error("product_name", "must not contain '<' or '>'")
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES or ch in _BIDI_CONTROLS:
            raise _rule_error(
                "product_name", f"must not contain control characters (found U+{ord(ch):04X})"
            )
    if not value.strip():
        raise _rule_error("product_name", "must not be blank")
    return value


def _check_yyyymmdd(value: str) -> str:
    try:
        if value != value.strip():
            raise ValueError("surrounding spaces")
        parse_payletter_date(value)
    except ValueError:
        raise _rule_error("expire_date", "must be a valid date as YYYYMMDD") from None
    return value


def _check_hhmm(value: str) -> str:
    if not re.fullmatch(r"([01][0-9]|2[0-3])[0-5][0-9]", value):
        raise _rule_error("expire_time", "must be a valid time as HHMM")
    return value


def _token_to_str(value: object) -> object:
    # Payletter sends the token as a JSON number larger than 2**53: keep every digit as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _reject_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


def _numeric_text_to_int(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return _reject_bool(value)


def _to_aware_datetime(value: object) -> object:
    if isinstance(value, str):
        return parse_payletter_datetime(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value


def _empty_to_none(value: object) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _to_optional_aware_datetime(value: object) -> object:
    # Payletter writes "" for "no cancel yet".
    return _to_aware_datetime(_empty_to_none(value))


def _to_korea_date(value: object) -> object:
    if isinstance(value, str) and _COMPACT_DATE.fullmatch(value.strip()):
        return parse_payletter_date(value)
    if isinstance(value, date):
        return korea_date(value)
    return value


# Money in requests: whole won, a real int (no float, no bool, no numeric string), at most
# a trillion: far above any real payment, and every sum of them fits a 64-bit column.
MAX_WON = 10**12
Won = Annotated[int, Strict(), Field(ge=0, le=MAX_WON)]
# Money in responses: an integer however the JSON spells it, but never a boolean.
ResponseWon = Annotated[int, BeforeValidator(_reject_bool)]
YesNo = Literal["Y", "N"]
PgcodeText = Annotated[str, Field(min_length=1, max_length=20)]
ClientId = Annotated[str, Field(min_length=1, max_length=20)]
UserId = Annotated[str, Field(min_length=1, max_length=50)]
UserName = Annotated[str, Field(max_length=20)]
ServiceName = Annotated[str, Field(min_length=1, max_length=20)]
Tid = Annotated[str, Field(min_length=1, max_length=40)]
IpAddr = Annotated[str, Field(min_length=1, max_length=30), AfterValidator(_check_ip_addr)]
ProductName = Annotated[
    str, Field(min_length=1, max_length=120), AfterValidator(_check_product_name)
]
WebUrl = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_check_web_url)]
AppUrl = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_check_app_url)]
Billkey = Annotated[SecretStr, Field(min_length=1, max_length=40)]
Token = Annotated[str, BeforeValidator(_token_to_str)]
PayletterDateTime = Annotated[AwareDatetime, BeforeValidator(_to_aware_datetime)]
OptionalPayletterDateTime = Annotated[
    AwareDatetime | None, BeforeValidator(_to_optional_aware_datetime)
]

_TID_ADAPTER: TypeAdapter[str] = TypeAdapter(Tid)


def validate_tid(tid: str) -> str:
    try:
        return _TID_ADAPTER.validate_python(tid, strict=True)
    except ValidationError:
        raise PayletterValidationError("tid", "must be a string of 1 to 40 characters") from None


# ---------------------------------------------------------------------------------------
# Shared vendor rules.


def _check_split(amount: int, taxfree_amount: int | None, tax_amount: int | None) -> None:
    taxfree = taxfree_amount or 0
    if taxfree > amount:
        raise _rule_error("taxfree_amount", "must not exceed amount")
    if tax_amount is not None and tax_amount > amount - taxfree:
        raise _rule_error("tax_amount", "must not exceed amount - taxfree_amount")


def _check_min_amount(rule: MethodRule, amount: int) -> None:
    if amount < rule.min_amount:
        raise _rule_error(
            "amount", f"must be at least {rule.min_amount} won for pgcode {rule.pgcode}"
        )


def _known_requested_pgcode(value: str) -> str:
    if value not in METHODS:
        raise _rule_error("pgcode", "is not a Payletter pgcode")
    return value


def _known_any_pgcode(value: str | None) -> str | None:
    """Requested codes and the codes results report (navercard, smilecash, …); None passes."""
    if value is not None and requested_pgcode_for_result(value) is None:
        raise _rule_error("pgcode", "is not a Payletter pgcode")
    return value


# ---------------------------------------------------------------------------------------
# Requests.


class PayletterRequest(BaseModel):
    """Base of request models: frozen, no unknown fields, inputs never echoed in errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body Payletter expects (secrets revealed only here)."""
        return self.model_dump(mode="json", exclude_none=True)


class _TaxSplit:
    """A request whose amount has a tax-free part and VAT (`_check_split` checks them)."""

    if TYPE_CHECKING:  # the request model's own fields
        amount: int | None
        taxfree_amount: int | None
        tax_amount: int | None

    def effective_tax_amount(self) -> int | None:
        """The VAT Payletter will use: ours if given, else its default; None without amount."""
        if self.tax_amount is not None:
            return self.tax_amount
        if self.amount is None:
            return None
        return default_tax_amount(self.amount, self.taxfree_amount or 0)


class MerchantCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    client_id: ClientId
    payment_key: Annotated[SecretStr, Field(min_length=1)]
    search_key: Annotated[SecretStr, Field(min_length=1)]


class PaymentRequest(_TaxSplit, PayletterRequest):
    """Body of POST v1.0/payments/request (one-off payment or autopay registration)."""

    pgcode: PgcodeText
    client_id: ClientId
    user_id: UserId
    product_name: ProductName
    return_url: WebUrl
    callback_url: WebUrl
    amount: Won | None = None
    taxfree_amount: Won | None = None
    tax_amount: Won | None = None
    service_name: ServiceName | None = None
    user_name: UserName | None = None
    order_no: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    email_flag: YesNo | None = None
    email_addr: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    autopay_flag: YesNo | None = None
    receipt_flag: YesNo | None = None
    keyin_flag: YesNo | None = None
    inapp_flag: YesNo | None = None
    company_name_flag: YesNo | None = None
    custom_parameter: Annotated[str, Field(max_length=1024)] | None = None
    cancel_url: WebUrl | None = None
    app_return_url: AppUrl | None = None
    app_cancel_url: AppUrl | None = None
    expire_date: Annotated[str, AfterValidator(_check_yyyymmdd)] | None = None
    expire_time: Annotated[str, AfterValidator(_check_hhmm)] | None = None
    disposable_cup_deposit: Won | None = None

    _known_pgcode = field_validator("pgcode")(_known_requested_pgcode)

    @property
    def rule(self) -> MethodRule:
        return METHODS[self.pgcode]

    @property
    def is_autopay_registration(self) -> bool:
        return self.autopay_flag == "Y"

    @model_validator(mode="after")
    def _check_vendor_rules(self) -> Self:
        rule = self.rule
        if rule.requires_service_name and not self.service_name:
            raise _rule_error("service_name", f"is required for pgcode {rule.pgcode}")
        if self.is_autopay_registration and not rule.autopay:
            raise _rule_error("autopay_flag", f"pgcode {rule.pgcode} does not support autopay")
        deposit = self.disposable_cup_deposit or 0
        # 0 means "no deposit" and is harmless anywhere; a real deposit needs method support.
        if deposit and not rule.disposable_cup_deposit:
            raise _rule_error("disposable_cup_deposit", f"is not accepted for pgcode {rule.pgcode}")
        if self.amount is None:
            if not rule.amount_optional:
                raise _rule_error("amount", f"is required for pgcode {rule.pgcode}")
            if self.taxfree_amount or self.tax_amount or deposit:
                raise _rule_error("amount", "is required when a tax split or deposit is given")
            return self
        if self.amount == 0:
            if not self.is_autopay_registration:
                raise _rule_error(
                    "amount", "0 is only allowed for an autopay (billkey-only) registration"
                )
        else:
            _check_min_amount(rule, self.amount)
        _check_split(self.amount, self.taxfree_amount, self.tax_amount)
        return self


class AutopayRequest(_TaxSplit, PayletterRequest):
    """Body of POST v1.0/payments/autopay: charge a stored billkey."""

    pgcode: PgcodeText
    client_id: ClientId
    user_id: UserId
    amount: Won
    product_name: ProductName
    billkey: Billkey
    ip_addr: IpAddr
    service_name: ServiceName | None = None
    user_name: UserName | None = None
    order_no: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    taxfree_amount: Won | None = None
    tax_amount: Won | None = None
    disposable_cup_deposit: Won | None = None

    _known_pgcode = field_validator("pgcode")(_known_requested_pgcode)

    @model_validator(mode="after")
    def _check_vendor_rules(self) -> Self:
        rule = METHODS[self.pgcode]
        if not rule.autopay:
            raise _rule_error("pgcode", f"pgcode {rule.pgcode} does not support autopay")
        if rule.requires_service_name and not self.service_name:
            raise _rule_error("service_name", f"is required for pgcode {rule.pgcode}")
        if self.disposable_cup_deposit and not (
            rule.disposable_cup_deposit and rule.pgcode in AUTOPAY_CUP_DEPOSIT_PGCODES
        ):
            raise _rule_error(
                "disposable_cup_deposit", f"is not accepted for autopay with {rule.pgcode}"
            )
        _check_min_amount(rule, self.amount)
        _check_split(self.amount, self.taxfree_amount, self.tax_amount)
        return self

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body["billkey"] = self.billkey.get_secret_value()
        return body


class CancelRequest(PayletterRequest):
    """Body of POST v1.0/payments/cancel (the whole remaining amount)."""

    client_id: ClientId
    user_id: UserId
    tid: Tid
    ip_addr: IpAddr
    pgcode: PgcodeText | None = None

    _known_pgcode = field_validator("pgcode")(_known_any_pgcode)

    @model_validator(mode="after")
    def _check_vendor_rules(self) -> Self:
        if self.pgcode is not None:
            rule = METHODS[requested_pgcode_for_result(self.pgcode) or self.pgcode]
            if not rule.cancel:
                raise _rule_error("pgcode", f"pgcode {rule.pgcode} payments can't be cancelled")
        return self


class PartialCancelRequest(_TaxSplit, PayletterRequest):
    """Body of POST v1.0/payments/cancel/partial."""

    pgcode: PgcodeText
    client_id: ClientId
    user_id: UserId
    tid: Tid
    amount: Won
    ip_addr: IpAddr
    taxfree_amount: Won | None = None
    tax_amount: Won | None = None

    _known_pgcode = field_validator("pgcode")(_known_any_pgcode)

    @model_validator(mode="after")
    def _check_vendor_rules(self) -> Self:
        rule = METHODS[requested_pgcode_for_result(self.pgcode) or self.pgcode]
        if not rule.partial_cancel:
            raise _rule_error("pgcode", f"pgcode {rule.pgcode} does not allow partial cancel")
        if self.amount <= 0:
            raise _rule_error("amount", "must be greater than 0")
        _check_split(self.amount, self.taxfree_amount, self.tax_amount)
        return self


class CashReceiptRequest(PayletterRequest):
    """Body of POST v1.0/cashreceipt/issue/{tid}."""

    client_id: ClientId
    return_url: WebUrl
    # 0: buyer chooses, 1: income deduction, 2: expense proof.
    type: Literal["0", "1", "2"] | None = None
    # Note the vendor's inversion: N = VAT included, Y = VAT not included.
    tax_flag: YesNo | None = None


class TransactionListQuery(PayletterRequest):
    """Query of GET v1.0/payments/transaction/list."""

    client_id: ClientId
    date: Annotated[_dt.date, BeforeValidator(_to_korea_date)]
    date_type: Literal["transaction", "settle"]
    pgcode: PgcodeText | None = None

    _known_pgcode = field_validator("pgcode")(_known_any_pgcode)

    def to_query(self) -> dict[str, str]:
        query = {
            "client_id": self.client_id,
            "date": format_payletter_date(self.date),
            "date_type": self.date_type,
        }
        if self.pgcode is not None:
            query["pgcode"] = self.pgcode
        return query

    def to_wire(self) -> dict[str, Any]:
        return dict(self.to_query())


class PaymentStatusQuery(PayletterRequest):
    """Body of POST v1.0/payments/status."""

    client_id: ClientId
    order_no: Annotated[str, Field(min_length=1, max_length=40)]


class ReceiptInfoQuery(PayletterRequest):
    """Path and query of GET v1.0/receipt/info/{tid}."""

    client_id: ClientId
    tid: Tid


# ---------------------------------------------------------------------------------------
# Responses.


class PayletterResponse(BaseModel):
    """Base of response models: unknown fields ignored (the vendor may add some)."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", hide_input_in_errors=True, populate_by_name=True
    )


class PaymentWindow(PayletterResponse):
    token: Token
    online_url: str
    mobile_url: str


class AutopayResult(PayletterResponse):
    tid: str
    cid: str
    amount: ResponseWon
    billkey: SecretStr
    transaction_date: PayletterDateTime


class CancelResult(PayletterResponse):
    tid: str
    cid: str
    amount: ResponseWon
    cancel_date: PayletterDateTime


class ReceiptUrl(PayletterResponse):
    receipt_url: Annotated[str, Field(min_length=1)]


class Transaction(PayletterResponse):
    pgcode: str
    user_id: str
    tid: str
    amount: ResponseWon
    taxfree_amount: ResponseWon
    tax_amount: ResponseWon
    # 0 approved, 1 fully cancelled, 2 partially cancelled.
    status_code: Annotated[Literal[0, 1, 2], BeforeValidator(_numeric_text_to_int)]
    transaction_date: PayletterDateTime
    cancel_date: OptionalPayletterDateTime = None
    user_name: str | None = None
    cid: str | None = None
    order_no: str | None = None
    product_name: str | None = None


class TransactionList(PayletterResponse):
    total_count: ResponseWon
    items: list[Transaction] = Field(alias="list")


class PaymentStatus(PayletterResponse):
    code: Annotated[int, BeforeValidator(_numeric_text_to_int)]
    client_id: str
    order_no: str
    token: Token
    # 1 created, 2 entered, 3 authenticated, 4 approved, 5 done.
    status_code: Annotated[Literal[1, 2, 3, 4, 5], BeforeValidator(_numeric_text_to_int)]
    message: str = ""
    tid: Annotated[str | None, BeforeValidator(_empty_to_none)] = None


__all__ = [
    "KST",
    "AutopayRequest",
    "AutopayResult",
    "CancelRequest",
    "CancelResult",
    "CashReceiptRequest",
    "MerchantCredentials",
    "PartialCancelRequest",
    "PayletterRequest",
    "PayletterResponse",
    "PaymentRequest",
    "PaymentStatus",
    "PaymentStatusQuery",
    "PaymentWindow",
    "ReceiptInfoQuery",
    "ReceiptUrl",
    "Transaction",
    "TransactionList",
    "TransactionListQuery",
    "build_request",
    "format_payletter_date",
    "korea_date",
    "parse_payletter_date",
    "parse_payletter_datetime",
    "revalidate",
    "to_payletter_validation_error",
    "validate_tid",
]
