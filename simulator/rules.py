"""Per-pgcode rules, as data, transcribed from the vendor page's 결제수단별 옵션 table.

Columns there: autopay (자동결제), cancel (결제취소), partial cancel (부분 취소),
cancel window (취소가능기간) and minimum amount (최소 승인가능금액). The remaining
columns come from the page's notes: service_name required for SSG페이/삼성페이,
cancel_url not called for 네이버페이/삼성페이, card_info only for 신용카드/페이코,
the disposable-cup-deposit methods, and the result pgcodes of 네이버페이/스마일페이.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from simulator.clock import kst_date, to_kst


class WindowKind(StrEnum):
    DAYS = "days"  # D+N: until N days after the payment day (KST)
    SAME_DAY = "same_day"  # 결제 당일
    SAME_MONTH = "same_month"  # 결제 당월
    NEVER = "never"  # 취소불가


@dataclass(frozen=True)
class CancelWindow:
    kind: WindowKind
    days: int = 0

    def allows(self, paid_at: datetime, now: datetime) -> bool:
        paid_day, today = kst_date(paid_at), kst_date(now)
        if today < paid_day:
            return True  # a clock set before the payment: nothing has expired yet
        match self.kind:
            case WindowKind.DAYS:
                return today <= paid_day + timedelta(days=self.days)
            case WindowKind.SAME_DAY:
                return today == paid_day
            case WindowKind.SAME_MONTH:
                return (today.year, today.month) == (paid_day.year, paid_day.month)
            case WindowKind.NEVER:
                return False

    def describe(self) -> str:
        match self.kind:
            case WindowKind.DAYS:
                return f"D+{self.days}"
            case WindowKind.SAME_DAY:
                return "the payment day"
            case WindowKind.SAME_MONTH:
                return "the payment month"
            case WindowKind.NEVER:
                return "never"


D180 = CancelWindow(WindowKind.DAYS, 180)
D365 = CancelWindow(WindowKind.DAYS, 365)
D30 = CancelWindow(WindowKind.DAYS, 30)
D24 = CancelWindow(WindowKind.DAYS, 24)
SAME_DAY = CancelWindow(WindowKind.SAME_DAY)
SAME_MONTH = CancelWindow(WindowKind.SAME_MONTH)
NEVER = CancelWindow(WindowKind.NEVER)


@dataclass(frozen=True)
class MethodRules:
    pgcode: str
    label: str
    autopay: bool
    cancellable: bool
    partial_cancel: bool
    window: CancelWindow
    min_amount: int
    requires_service_name: bool = False
    calls_cancel_url: bool = True
    amount_optional: bool = False  # 문화상품권 may be requested without an amount
    card_info: bool = False  # masked card number in the result
    card_like: bool = False  # domestic_flag / install_month are meaningful
    cup_deposit: bool = False  # disposable_cup_deposit accepted on payments/request
    autopay_cup_deposit: bool = False  # ... and on payments/autopay
    # Simulator assumption (the page is silent): cash receipts for cash-like methods only.
    cash_receipt: bool = False
    # What the result reports as pgcode; the first is the default. Empty = the pgcode itself.
    result_pgcodes: tuple[str, ...] = ()
    # A result pgcode with its own window (스마일페이: card D+180, cash D+365).
    result_windows: dict[str, CancelWindow] = field(default_factory=dict)
    # Listed in the pgcode table without any rules (온캐시): rules below are our guess.
    documented: bool = True

    def result_pgcode(self, choice: str | None = None) -> str:
        if not self.result_pgcodes:
            return self.pgcode
        if choice in self.result_pgcodes:
            return choice
        return self.result_pgcodes[0]

    def window_for(self, result_pgcode: str) -> CancelWindow:
        return self.result_windows.get(result_pgcode, self.window)

    def answers_to(self, pgcode: str) -> bool:
        """Whether a later call naming `pgcode` means this method (naverpay or navercard...)."""
        return pgcode == self.pgcode or pgcode in self.result_pgcodes


def _gift(
    pgcode: str, label: str, *, partial: bool, min_amount: int, amount_optional: bool = False
) -> MethodRules:
    return MethodRules(
        pgcode=pgcode,
        label=label,
        autopay=False,
        cancellable=True,
        partial_cancel=partial,
        window=D24,
        min_amount=min_amount,
        amount_optional=amount_optional,
        cash_receipt=True,
    )


_METHODS: tuple[MethodRules, ...] = (
    MethodRules(
        "creditcard", "신용카드", autopay=True, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, card_info=True, card_like=True,
        cup_deposit=True, autopay_cup_deposit=True,
    ),
    MethodRules(
        "banktransfer", "인터넷뱅킹", autopay=False, cancellable=True, partial_cancel=True,
        window=SAME_DAY, min_amount=1000, cash_receipt=True,
    ),
    MethodRules(
        "virtualaccount", "가상계좌", autopay=False, cancellable=False, partial_cancel=False,
        window=NEVER, min_amount=500, cash_receipt=True,
    ),
    MethodRules(
        "toss", "토스(TOSS)", autopay=False, cancellable=True, partial_cancel=True,
        window=D180, min_amount=1, cup_deposit=True, cash_receipt=True,
    ),
    MethodRules(
        "kakaopay", "카카오페이", autopay=False, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, cup_deposit=True, autopay_cup_deposit=True,
    ),
    MethodRules(
        "payco", "페이코", autopay=True, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, card_info=True, card_like=True,
    ),
    MethodRules(
        "ssgpay", "SSG페이", autopay=False, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, requires_service_name=True, cup_deposit=True,
    ),
    MethodRules(
        "naverpay", "네이버페이", autopay=False, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, calls_cancel_url=False, cup_deposit=True,
        result_pgcodes=("navercard", "naverpoint"),
    ),
    MethodRules(
        "samsungpay", "삼성페이", autopay=False, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, requires_service_name=True, calls_cancel_url=False,
    ),
    MethodRules(
        "checkpay", "계좌 간편결제(체크페이)", autopay=True, cancellable=True,
        partial_cancel=False, window=D30, min_amount=1000, cash_receipt=True,
    ),
    MethodRules(
        "mobile", "휴대폰", autopay=True, cancellable=True, partial_cancel=True,
        window=SAME_MONTH, min_amount=10, cup_deposit=True,
    ),
    MethodRules(
        "phonebill", "KT 집전화 결제", autopay=False, cancellable=True, partial_cancel=False,
        window=SAME_MONTH, min_amount=10,
    ),
    _gift("voucher", "문화상품권", partial=False, min_amount=1, amount_optional=True),
    _gift("culture", "컬쳐랜드상품권", partial=True, min_amount=1),
    _gift("smartculture", "스마트문상", partial=False, min_amount=1),
    _gift("book", "도서문화상품권", partial=True, min_amount=1),
    _gift("happymoney", "해피머니상품권", partial=True, min_amount=1),
    _gift("mobilepop", "모바일팝", partial=True, min_amount=10),
    _gift("teencash", "틴캐시", partial=False, min_amount=10),
    _gift("cvs", "편의점캐시", partial=False, min_amount=10),
    _gift("eggmoney", "에그머니", partial=False, min_amount=10),
    MethodRules(
        "tmoney", "교통카드결제(티머니/캐시비)", autopay=False, cancellable=True,
        partial_cancel=False, window=D24, min_amount=10, cup_deposit=True, cash_receipt=True,
    ),
    _gift("cashbee", "교통카드결제(이즐)", partial=True, min_amount=10),
    MethodRules(
        "smilepay", "스마일페이", autopay=False, cancellable=True, partial_cancel=True,
        window=D180, min_amount=100, result_pgcodes=("smilecard", "smilecash"),
        result_windows={"smilecard": D180, "smilecash": D365},
    ),
    MethodRules(
        "oncash", "온캐시", autopay=False, cancellable=True, partial_cancel=False,
        window=D24, min_amount=1, cash_receipt=True, documented=False,
    ),
)

METHODS: dict[str, MethodRules] = {m.pgcode: m for m in _METHODS}


def rules_for(pgcode: str) -> MethodRules | None:
    return METHODS.get(pgcode)


def rules_for_result(pgcode: str) -> MethodRules | None:
    """Rules by requested pgcode or by a result pgcode (navercard -> naverpay)."""
    return METHODS.get(pgcode) or next(
        (m for m in METHODS.values() if pgcode in m.result_pgcodes), None
    )


def tax_amount_default(amount: int, taxfree_amount: int) -> int:
    """(amount - taxfree) / 11, rounded half up, in integers only."""
    taxable = amount - taxfree_amount
    return (2 * taxable + 11) // 22


def months_between(earlier: datetime, later: datetime) -> int:
    """Whole calendar months from `earlier`'s KST month to `later`'s KST month."""
    a, b = to_kst(earlier), to_kst(later)
    return (b.year - a.year) * 12 + (b.month - a.month)


def same_day_of_month(first: datetime, now: datetime) -> bool:
    """Mobile autopay: the same day every month (a short month's last day stands in)."""
    a, b = to_kst(first), to_kst(now)
    last_day = calendar.monthrange(b.year, b.month)[1]
    return b.day == min(a.day, last_day)
