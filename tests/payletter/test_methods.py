from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest

from app.payletter.errors import PayletterValidationError, UnknownPgcodeError
from app.payletter.methods import (
    METHODS,
    CancelWindow,
    default_tax_amount,
    requested_pgcode_for_result,
    rule_for,
    rule_for_result_pgcode,
)

KST = timezone(timedelta(hours=9))

# The vendor's PGCode table (첨부: PGCode 표), typed in from the page.
VENDOR_PGCODES = {
    "creditcard",
    "banktransfer",
    "virtualaccount",
    "mobile",
    "voucher",
    "book",
    "culture",
    "smartculture",
    "happymoney",
    "mobilepop",
    "teencash",
    "tmoney",
    "cvs",
    "eggmoney",
    "oncash",
    "phonebill",
    "cashbee",
    "kakaopay",
    "payco",
    "checkpay",
    "toss",
    "ssgpay",
    "naverpay",
    "samsungpay",
    "smilepay",
}

# The vendor's 결제수단별 옵션 table: autopay, cancel, partial cancel, window, min amount.
VENDOR_OPTIONS = [
    ("creditcard", True, True, True, CancelWindow.within_days(180), 100),
    ("banktransfer", False, True, True, CancelWindow("same_day"), 1000),
    ("virtualaccount", False, False, False, CancelWindow("never"), 500),
    ("toss", False, True, True, CancelWindow.within_days(180), 1),
    ("kakaopay", False, True, True, CancelWindow.within_days(180), 100),
    ("payco", True, True, True, CancelWindow.within_days(180), 100),
    ("ssgpay", False, True, True, CancelWindow.within_days(180), 100),
    ("naverpay", False, True, True, CancelWindow.within_days(180), 100),
    ("samsungpay", False, True, True, CancelWindow.within_days(180), 100),
    ("checkpay", True, True, False, CancelWindow.within_days(30), 1000),
    ("mobile", True, True, True, CancelWindow("same_month"), 10),
    ("phonebill", False, True, False, CancelWindow("same_month"), 10),
    ("voucher", False, True, False, CancelWindow.within_days(24), 1),
    ("culture", False, True, True, CancelWindow.within_days(24), 1),
    ("smartculture", False, True, False, CancelWindow.within_days(24), 1),
    ("book", False, True, True, CancelWindow.within_days(24), 1),
    ("happymoney", False, True, True, CancelWindow.within_days(24), 1),
    ("mobilepop", False, True, True, CancelWindow.within_days(24), 10),
    ("teencash", False, True, False, CancelWindow.within_days(24), 10),
    ("cvs", False, True, False, CancelWindow.within_days(24), 10),
    ("eggmoney", False, True, False, CancelWindow.within_days(24), 10),
    ("tmoney", False, True, False, CancelWindow.within_days(24), 10),
    ("cashbee", False, True, True, CancelWindow.within_days(24), 10),
    ("smilepay", False, True, True, CancelWindow.within_days(180), 100),
]


def test_methods_cover_exactly_the_vendor_pgcode_table() -> None:
    assert set(METHODS) == VENDOR_PGCODES


@pytest.mark.parametrize(
    ("pgcode", "autopay", "cancel", "partial", "window", "min_amount"), VENDOR_OPTIONS
)
def test_method_rule_matches_vendor_options_row(
    pgcode: str, autopay: bool, cancel: bool, partial: bool, window: CancelWindow, min_amount: int
) -> None:
    rule = rule_for(pgcode)
    assert rule.pgcode == pgcode
    assert (rule.autopay, rule.cancel, rule.partial_cancel) == (autopay, cancel, partial)
    assert rule.cancel_window == window
    assert rule.min_amount == min_amount
    assert rule.label


def test_oncash_has_conservative_rules_and_min_amount_one() -> None:
    rule = rule_for("oncash")
    assert not rule.autopay
    assert not rule.partial_cancel
    assert rule.min_amount == 1


def test_only_ssgpay_and_samsungpay_require_service_name() -> None:
    assert {r.pgcode for r in METHODS.values() if r.requires_service_name} == {
        "ssgpay",
        "samsungpay",
    }


def test_only_toss_checkpay_and_virtualaccount_require_a_callback() -> None:
    assert {r.pgcode for r in METHODS.values() if r.callback_required} == {
        "toss",
        "checkpay",
        "virtualaccount",
    }


def test_only_virtualaccount_sends_no_payhash() -> None:
    assert {r.pgcode for r in METHODS.values() if not r.sends_payhash} == {"virtualaccount"}


def test_only_voucher_may_omit_the_amount() -> None:
    assert {r.pgcode for r in METHODS.values() if r.amount_optional} == {"voucher"}


def test_disposable_cup_deposit_methods_are_the_vendors_list() -> None:
    assert {r.pgcode for r in METHODS.values() if r.disposable_cup_deposit} == {
        "creditcard",
        "naverpay",
        "kakaopay",
        "toss",
        "ssgpay",
        "tmoney",
        "mobile",
    }


def test_result_pgcodes_name_what_naverpay_and_smilepay_report() -> None:
    assert rule_for("naverpay").result_pgcodes == {"naverpay", "navercard", "naverpoint"}
    assert rule_for("smilepay").result_pgcodes == {"smilepay", "smilecard", "smilecash"}
    assert rule_for("creditcard").result_pgcodes == {"creditcard"}


@pytest.mark.parametrize(
    ("reported", "requested"),
    [
        ("navercard", "naverpay"),
        ("naverpoint", "naverpay"),
        ("naverpay", "naverpay"),
        ("smilecash", "smilepay"),
        ("smilecard", "smilepay"),
        ("creditcard", "creditcard"),
        ("bitcoin", None),
        ("", None),
    ],
)
def test_requested_pgcode_for_result_maps_reported_codes_back(
    reported: str, requested: str | None
) -> None:
    assert requested_pgcode_for_result(reported) == requested


def test_rule_for_result_pgcode_finds_the_requesting_methods_rule() -> None:
    assert rule_for_result_pgcode("navercard") is rule_for("naverpay")
    with pytest.raises(UnknownPgcodeError):
        rule_for_result_pgcode("bitcoin")


def test_rule_for_unknown_pgcode_raises_a_validation_error_naming_pgcode() -> None:
    with pytest.raises(UnknownPgcodeError) as caught:
        rule_for("bitcoin")
    assert isinstance(caught.value, PayletterValidationError)
    assert caught.value.field == "pgcode"


def test_smilepay_cancel_window_is_180_days_for_card_and_365_for_cash() -> None:
    rule = rule_for("smilepay")
    assert rule.cancel_window_for("smilecard") == CancelWindow.within_days(180)
    assert rule.cancel_window_for("smilecash") == CancelWindow.within_days(365)
    assert rule_for("creditcard").cancel_window_for("creditcard") == CancelWindow.within_days(180)


def test_cancel_window_same_day_ends_at_korean_midnight() -> None:
    # 15:30 UTC is already the next day (00:30) in Korea.
    paid = datetime(2024, 3, 10, 15, 30, tzinfo=UTC)
    assert CancelWindow("same_day").deadline(paid) == datetime(2024, 3, 12, tzinfo=KST)
    assert CancelWindow("same_day").is_open(paid, datetime(2024, 3, 11, 23, 59, tzinfo=KST))
    assert not CancelWindow("same_day").is_open(paid, datetime(2024, 3, 12, tzinfo=KST))


def test_cancel_window_same_month_ends_with_the_korean_month() -> None:
    paid = datetime(2024, 2, 10, 12, 0, tzinfo=KST)
    assert CancelWindow("same_month").deadline(paid) == datetime(2024, 3, 1, tzinfo=KST)


def test_cancel_window_days_counts_from_the_korean_payment_day() -> None:
    paid = datetime(2024, 1, 1, 9, 0, tzinfo=KST)
    assert CancelWindow.within_days(180).deadline(paid) == datetime(2024, 6, 30, tzinfo=KST)


def test_cancel_window_never_has_no_deadline_and_is_never_open() -> None:
    paid = datetime(2024, 1, 1, tzinfo=KST)
    assert CancelWindow("never").deadline(paid) is None
    assert not CancelWindow("never").is_open(paid, paid)


def test_cancel_window_refuses_naive_payment_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CancelWindow("same_day").deadline(datetime(2024, 1, 1))


@pytest.mark.parametrize(("kind", "days"), [("days", None), ("same_day", 3), ("days", -1)])
def test_cancel_window_refuses_inconsistent_definitions(kind: str, days: int | None) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        CancelWindow(kind, days)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "taxfree", "expected"),
    [
        (1000, 100, 82),  # 900 / 11 = 81.81…
        (16, 0, 1),  # 1.45…
        (165, 0, 15),  # exactly 15
        (77, 0, 7),  # exactly 7
        (5, 0, 0),  # 0.4545…: the closest to .5 from below rounds down
        (6, 0, 1),  # 0.5454…: the closest to .5 from above rounds up
        (1000, 1000, 0),  # all tax-free
        (0, 0, 0),
        (10**15 + 6, 0, 90909090909091),  # big amounts stay exact (no float)
    ],
)
def test_default_tax_amount_rounds_half_up(amount: int, taxfree: int, expected: int) -> None:
    assert default_tax_amount(amount, taxfree) == expected


def test_default_tax_amount_equals_exact_half_up_for_every_small_amount() -> None:
    # A tie would need (amount - taxfree) / 11 == k + 0.5, i.e. 2 * taxable == 22k + 11: odd,
    # so it can't happen with integers; check the formula against exact rational half-up.
    for taxable in range(5000):
        exact = Fraction(taxable, 11)
        assert exact.denominator == 1 or exact - int(exact) != Fraction(1, 2)
        assert default_tax_amount(taxable, 0) == int(exact + Fraction(1, 2))


@pytest.mark.parametrize(
    ("amount", "taxfree", "field"),
    [(100, 101, "taxfree_amount"), (-1, 0, "amount"), (100, -1, "taxfree_amount")],
)
def test_default_tax_amount_refuses_impossible_splits(
    amount: int, taxfree: int, field: str
) -> None:
    with pytest.raises(PayletterValidationError) as caught:
        default_tax_amount(amount, taxfree)
    assert caught.value.field == field


@pytest.mark.parametrize("amount", [1000.0, True])
def test_default_tax_amount_refuses_non_int_money(amount: object) -> None:
    with pytest.raises(PayletterValidationError):
        default_tax_amount(amount, 0)  # type: ignore[arg-type]
