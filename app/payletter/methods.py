"""Per-pgcode rules from the vendor's "결제수단별 옵션" table, kept as data."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from types import MappingProxyType
from typing import Literal

from app.kit.korea_time import KST  # "D+180", "결제 당일": counted in Korea time
from app.payletter.errors import PayletterValidationError, UnknownPgcodeError

# payments/status status_code: 1 created, 2 entered, 3 authenticated, 4 approved, 5 done.
STATUS_AUTHENTICATED, STATUS_APPROVED, STATUS_DONE = 3, 4, 5

CancelWindowKind = Literal["days", "same_day", "same_month", "never"]


@dataclass(frozen=True)
class CancelWindow:
    """How long after payment Payletter accepts a cancel.

    Interpretation (the vendor gives only "D+n", "결제 당일", "결제 당월"): the window ends
    at the close of the Korea-time day that is n days after the payment day, of the payment
    day itself, or of the payment month. Payletter stays the judge; this is a pre-check.
    """

    kind: CancelWindowKind
    days: int | None = None

    def __post_init__(self) -> None:
        if (self.kind == "days") != (self.days is not None):
            raise ValueError("days is set exactly when kind == 'days'")
        if self.days is not None and self.days < 0:
            raise ValueError("days must be >= 0")

    @classmethod
    def within_days(cls, n: int) -> CancelWindow:
        return cls("days", n)

    def deadline(self, paid_at: datetime) -> datetime | None:
        """Last instant (exclusive) a cancel is accepted; None when it never is."""
        if paid_at.tzinfo is None:
            raise ValueError("paid_at must be timezone-aware")
        paid_day = paid_at.astimezone(KST).date()
        if self.kind == "never":
            return None
        if self.kind == "same_day":
            last_day = paid_day
        elif self.kind == "same_month":
            month_days = calendar.monthrange(paid_day.year, paid_day.month)[1]
            last_day = paid_day.replace(day=month_days)
        else:
            assert self.days is not None  # guaranteed by __post_init__
            last_day = paid_day + timedelta(days=self.days)
        return datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=KST)

    def is_open(self, paid_at: datetime, now: datetime) -> bool:
        deadline = self.deadline(paid_at)
        return deadline is not None and now < deadline


SAME_DAY = CancelWindow("same_day")
SAME_MONTH = CancelWindow("same_month")
NEVER = CancelWindow("never")
_D180 = CancelWindow.within_days(180)
_D30 = CancelWindow.within_days(30)
_D24 = CancelWindow.within_days(24)
_D365 = CancelWindow.within_days(365)


@dataclass(frozen=True)
class MethodRule:
    pgcode: str
    label: str
    autopay: bool
    cancel: bool
    partial_cancel: bool
    cancel_window: CancelWindow
    min_amount: int
    requires_service_name: bool = False
    sends_payhash: bool = True
    # Virtual accounts: the result first issues an account; the money comes with the deposit.
    deposit_later: bool = False
    callback_required: bool = False
    amount_optional: bool = False
    result_pgcodes: frozenset[str] = frozenset()
    disposable_cup_deposit: bool = False
    # Result pgcodes whose window differs from cancel_window (smilepay: cash is D+365).
    cancel_window_by_result: tuple[tuple[str, CancelWindow], ...] = ()

    def __post_init__(self) -> None:
        if not self.result_pgcodes:
            object.__setattr__(self, "result_pgcodes", frozenset({self.pgcode}))
        unknown = {code for code, _ in self.cancel_window_by_result} - self.result_pgcodes
        if unknown:
            raise ValueError(f"cancel_window_by_result names codes not reported: {unknown}")

    @property
    def paid_status_codes(self) -> frozenset[int]:
        """payments/status codes that mean the money was taken ("approved" only issues an
        account where the deposit comes later)."""
        if self.deposit_later:
            return frozenset({STATUS_DONE})
        return frozenset({STATUS_APPROVED, STATUS_DONE})

    @property
    def account_issued_status_codes(self) -> frozenset[int]:
        """payments/status codes that mean an account was issued and waits for the money."""
        return frozenset({STATUS_AUTHENTICATED, STATUS_APPROVED}) if self.deposit_later \
            else frozenset()

    def cancel_window_for(self, result_pgcode: str) -> CancelWindow:
        """The window for what the result reported (e.g. smilecard vs smilecash)."""
        for code, window in self.cancel_window_by_result:
            if code == result_pgcode:
                return window
        return self.cancel_window


# Vendor page "결제수단별 참고사항" and the request field docs give the extra columns:
# service_name is required for SSG페이/삼성페이; toss, checkpay and virtual accounts work only
# with callback_url; virtual accounts send no payhash; voucher may omit amount; the
# disposable cup deposit is accepted for card, naverpay, kakaopay, toss, ssgpay, tmoney, mobile.
_RULES: tuple[MethodRule, ...] = (
    # pgcode, label, autopay, cancel, partial_cancel, cancel_window, min_amount; then extras
    MethodRule("creditcard", "Credit card", True, True, True, _D180, 100,
               disposable_cup_deposit=True),
    MethodRule("banktransfer", "Internet banking (account transfer)", False, True, True,
               SAME_DAY, 1000),
    MethodRule("virtualaccount", "Virtual account", False, False, False, NEVER, 500,
               sends_payhash=False, deposit_later=True, callback_required=True),
    MethodRule("toss", "Toss", False, True, True, _D180, 1,
               callback_required=True, disposable_cup_deposit=True),
    MethodRule("kakaopay", "KakaoPay", False, True, True, _D180, 100, disposable_cup_deposit=True),
    MethodRule("payco", "PAYCO", True, True, True, _D180, 100),
    MethodRule("ssgpay", "SSG Pay", False, True, True, _D180, 100,
               requires_service_name=True, disposable_cup_deposit=True),
    MethodRule("naverpay", "Naver Pay", False, True, True, _D180, 100,
               result_pgcodes=frozenset({"naverpay", "navercard", "naverpoint"}),
               disposable_cup_deposit=True),
    MethodRule("samsungpay", "Samsung Pay", False, True, True, _D180, 100,
               requires_service_name=True),
    MethodRule("checkpay", "Checkpay (account simple pay)", True, True, False, _D30, 1000,
               callback_required=True),
    MethodRule("mobile", "Mobile phone billing", True, True, True, SAME_MONTH, 10,
               disposable_cup_deposit=True),
    MethodRule("phonebill", "KT home phone billing", False, True, False, SAME_MONTH, 10),
    MethodRule("voucher", "Culture voucher", False, True, False, _D24, 1, amount_optional=True),
    MethodRule("culture", "Cultureland voucher", False, True, True, _D24, 1),
    MethodRule("smartculture", "Smart culture voucher", False, True, False, _D24, 1),
    MethodRule("book", "Book culture voucher", False, True, True, _D24, 1),
    MethodRule("happymoney", "Happy Money voucher", False, True, True, _D24, 1),
    MethodRule("mobilepop", "Mobilepop", False, True, True, _D24, 10),
    MethodRule("teencash", "Teencash", False, True, False, _D24, 10),
    MethodRule("cvs", "Convenience-store cash", False, True, False, _D24, 10),
    MethodRule("eggmoney", "Eggmoney", False, True, False, _D24, 10),
    MethodRule("tmoney", "Transit card (T-money/Cashbee)", False, True, False, _D24, 10,
               disposable_cup_deposit=True),
    MethodRule("cashbee", "Transit card (Ezl)", False, True, True, _D24, 10),
    MethodRule("smilepay", "Smile Pay", False, True, True, _D180, 100,
               result_pgcodes=frozenset({"smilepay", "smilecard", "smilecash"}),
               cancel_window_by_result=(("smilecard", _D180), ("smilecash", _D365))),
    # oncash is in the PGCode table with no row in the options table. The vendor's own
    # transaction-list sample shows an oncash payment fully cancelled, so full cancel is
    # allowed; everything else takes the safe side: no autopay, no partial cancel, the
    # D+24 window of the other prepaid-cash methods, min 1 won (Payletter still decides).
    MethodRule("oncash", "Oncash", False, True, False, _D24, 1),
)

METHODS: Mapping[str, MethodRule] = MappingProxyType({rule.pgcode: rule for rule in _RULES})

_REQUESTED_BY_RESULT: Mapping[str, str] = MappingProxyType(
    {result: rule.pgcode for rule in _RULES for result in rule.result_pgcodes}
)

# The autopay page narrows the cup deposit to these two (and kakaopay has no autopay).
AUTOPAY_CUP_DEPOSIT_PGCODES: frozenset[str] = frozenset({"creditcard", "kakaopay"})


def rule_for(pgcode: str) -> MethodRule:
    try:
        return METHODS[pgcode]
    except (KeyError, TypeError):
        raise UnknownPgcodeError(str(pgcode)) from None


def requested_pgcode_for_result(result_pgcode: str) -> str | None:
    return _REQUESTED_BY_RESULT.get(result_pgcode)


def rule_for_result_pgcode(result_pgcode: str) -> MethodRule:
    """The rule behind what a result reported (navercard → naverpay's rule)."""
    requested = requested_pgcode_for_result(result_pgcode)
    if requested is None:
        raise UnknownPgcodeError(str(result_pgcode))
    return METHODS[requested]


def default_tax_amount(amount: int, taxfree_amount: int) -> int:
    """VAT Payletter assumes when tax_amount is omitted: (amount - taxfree) / 11, half up.

    Integer arithmetic: floor((2x + 11) / 22) == round-half-up(x / 11) for x >= 0. An exact
    .5 can't occur (x / 11 = k + 0.5 needs 2x = 22k + 11, odd), but half up is what the
    vendor says (소수점이하 반올림), so that's what this implements.
    """
    for name, value in (("amount", amount), ("taxfree_amount", taxfree_amount)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise PayletterValidationError(name, "must be an integer number of won")
        if value < 0:
            raise PayletterValidationError(name, "must not be negative")
    taxable = amount - taxfree_amount
    if taxable < 0:
        raise PayletterValidationError("taxfree_amount", "must not exceed amount")
    return (2 * taxable + 11) // 22


def paid_status_codes(pgcode: str) -> frozenset[int]:
    """payments/status codes meaning paid for an order of `pgcode` (unknown: approved/done)."""
    rule = METHODS.get(pgcode)
    return rule.paid_status_codes if rule else frozenset({STATUS_APPROVED, STATUS_DONE})
