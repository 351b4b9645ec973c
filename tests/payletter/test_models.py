"""Request validation (the vendor's field rules) and response parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from app.kit.korea_time import KST
from app.payletter.errors import PayletterError, PayletterValidationError
from app.payletter.methods import METHODS
from app.payletter.models import (
    AutopayRequest,
    AutopayResult,
    CancelRequest,
    CancelResult,
    CashReceiptRequest,
    MerchantCredentials,
    PartialCancelRequest,
    PaymentRequest,
    PaymentStatus,
    PaymentWindow,
    Transaction,
    TransactionList,
    TransactionListQuery,
    build_request,
    format_payletter_date,
    parse_payletter_datetime,
)

from .support import autopay_fields, cancel_fields, partial_cancel_fields, payment_fields


def refused(model: type[BaseModel], fields: dict[str, Any]) -> PayletterValidationError:
    with pytest.raises(PayletterValidationError) as caught:
        build_request(model, **fields)  # type: ignore[type-var]
    return caught.value


def payment(**overrides: Any) -> PaymentRequest:
    return build_request(PaymentRequest, **payment_fields(**overrides))


# --- dates and times ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2018-08-16 15:03:52", "20180816150352", " 2018-08-16 15:03:52 "])
def test_parse_payletter_datetime_reads_korea_time_as_plus_nine(text: str) -> None:
    parsed = parse_payletter_datetime(text)
    assert parsed == datetime(2018, 8, 16, 15, 3, 52, tzinfo=KST)
    assert parsed.utcoffset() == timedelta(hours=9)
    assert parsed.astimezone(UTC) == datetime(2018, 8, 16, 6, 3, 52, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "2018-08-16", "2018-8-16 1:2:3", "2018-13-01 00:00:00", "2018-08-16T15:03:52Z"]
)
def test_parse_payletter_datetime_refuses_other_shapes(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_payletter_datetime(text)


def test_format_payletter_date_is_yyyymmdd() -> None:
    assert format_payletter_date(date(2018, 9, 18)) == "20180918"


def test_format_payletter_date_takes_the_korean_day_of_an_aware_datetime() -> None:
    late_utc = datetime(2024, 1, 1, 16, 0, tzinfo=UTC)  # 2024-01-02 01:00 in Korea
    assert format_payletter_date(late_utc) == "20240102"


def test_format_payletter_date_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_payletter_date(datetime(2024, 1, 1, 12, 0))


# --- PaymentRequest: the vendor's sizes ---------------------------------------------------

SIZE_LIMITS = [
    ("client_id", 20),
    ("service_name", 20),
    ("user_id", 50),
    ("user_name", 20),
    ("order_no", 40),
    ("product_name", 120),
    ("email_addr", 100),
    ("custom_parameter", 1024),
    ("app_return_url", 256),
    ("app_cancel_url", 256),
]


@pytest.mark.parametrize(("field", "limit"), SIZE_LIMITS)
def test_payment_request_accepts_values_at_the_vendor_size_limit(field: str, limit: int) -> None:
    fields = payment_fields(**{field: "a" * limit})
    if field == "client_id":
        fields["client_id"] = "p" * limit
    assert len(getattr(build_request(PaymentRequest, **fields), field)) == limit


@pytest.mark.parametrize(("field", "limit"), SIZE_LIMITS)
def test_payment_request_refuses_values_over_the_vendor_size_limit(field: str, limit: int) -> None:
    error = refused(PaymentRequest, payment_fields(**{field: "a" * (limit + 1)}))
    assert error.field == field


@pytest.mark.parametrize("field", ["return_url", "callback_url", "cancel_url"])
def test_payment_request_limits_urls_to_256_characters(field: str) -> None:
    base = "https://shop.test/"
    assert payment(**{field: base + "a" * (256 - len(base))})
    assert (
        refused(PaymentRequest, payment_fields(**{field: base + "a" * (257 - len(base))})).field
        == field
    )


@pytest.mark.parametrize("field", ["return_url", "callback_url", "cancel_url"])
@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.test/x",
        "javascript:alert(1)",
        "/relative",
        "https://",
        "https://sh op.test/",
        "https://[::1",
    ],
)
def test_payment_request_requires_absolute_http_urls(field: str, url: str) -> None:
    assert refused(PaymentRequest, payment_fields(**{field: url})).field == field


@pytest.mark.parametrize(
    "field", ["return_url", "callback_url", "client_id", "user_id", "product_name"]
)
def test_payment_request_requires_the_vendors_mandatory_fields(field: str) -> None:
    fields = payment_fields()
    del fields[field]
    assert refused(PaymentRequest, fields).field == field


def test_payment_request_accepts_app_scheme_urls_for_in_app_returns() -> None:
    req = payment(
        inapp_flag="Y", app_return_url="myapp://ISPSuccess", app_cancel_url="myapp://ISPCancel"
    )
    assert req.app_return_url == "myapp://ISPSuccess"


def test_payment_request_refuses_unknown_fields() -> None:
    assert refused(PaymentRequest, payment_fields(taxfree=100)).field == "taxfree"


@pytest.mark.parametrize(
    "field",
    ["email_flag", "autopay_flag", "receipt_flag", "keyin_flag", "inapp_flag", "company_name_flag"],
)
@pytest.mark.parametrize("value", ["y", "Yes", "1", ""])
def test_payment_request_flags_must_be_y_or_n(field: str, value: str) -> None:
    assert refused(PaymentRequest, payment_fields(**{field: value})).field == field


@pytest.mark.parametrize(
    ("expire_date", "ok"),
    [("20241231", True), ("20240230", False), ("2024123", False), ("2024-12-31", False)],
)
def test_payment_request_expire_date_is_a_real_yyyymmdd(expire_date: str, ok: bool) -> None:
    fields = payment_fields(pgcode="virtualaccount", amount=1000, expire_date=expire_date)
    if ok:
        assert build_request(PaymentRequest, **fields).expire_date == expire_date
    else:
        assert refused(PaymentRequest, fields).field == "expire_date"


@pytest.mark.parametrize(
    ("expire_time", "ok"),
    [("0000", True), ("2359", True), ("2400", False), ("1260", False), ("930", False)],
)
def test_payment_request_expire_time_is_a_real_hhmm(expire_time: str, ok: bool) -> None:
    fields = payment_fields(pgcode="virtualaccount", amount=1000, expire_time=expire_time)
    if ok:
        assert build_request(PaymentRequest, **fields).expire_time == expire_time
    else:
        assert refused(PaymentRequest, fields).field == "expire_time"


# --- product_name characters ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "<b>상품</b>",
        "상품>",
        "line\nbreak",
        "carriage\rreturn",
        "tab\there",
        "nul\x00",
        "bell\x07",
        "del\x7f",
        "c1\x85control",
        "line\u2028separator",
        "bidi\u202eoverride",
        "   ",
    ],
)
def test_product_name_refuses_angle_brackets_and_control_characters(bad: str) -> None:
    assert refused(PaymentRequest, payment_fields(product_name=bad)).field == "product_name"


def test_product_name_refuses_empty_text() -> None:
    assert refused(PaymentRequest, payment_fields(product_name="")).field == "product_name"


@pytest.mark.parametrize(
    "good", ["테스트상품", 'Coffee & Cake "L" \'s', "☕ 아메리카노 x2", "a" * 120]
)
def test_product_name_accepts_ordinary_text(good: str) -> None:
    assert payment(product_name=good).product_name == good


def test_autopay_product_name_follows_the_same_character_rules() -> None:
    assert refused(AutopayRequest, autopay_fields(product_name="a\nb")).field == "product_name"


# --- amounts ------------------------------------------------------------------------------


def _fields_for_method(pgcode: str, amount: int) -> dict[str, Any]:
    return payment_fields(
        pgcode=pgcode, amount=amount, taxfree_amount=None, tax_amount=None, service_name="서비스"
    )


@pytest.mark.parametrize("pgcode", sorted(METHODS))
def test_payment_request_accepts_each_methods_minimum_amount(pgcode: str) -> None:
    minimum = METHODS[pgcode].min_amount
    assert build_request(PaymentRequest, **_fields_for_method(pgcode, minimum)).amount == minimum


@pytest.mark.parametrize("pgcode", sorted(METHODS))
def test_payment_request_refuses_one_won_below_each_methods_minimum(pgcode: str) -> None:
    error = refused(PaymentRequest, _fields_for_method(pgcode, METHODS[pgcode].min_amount - 1))
    assert error.field == "amount"


def test_payment_request_explains_the_minimum_in_the_reason() -> None:
    error = refused(PaymentRequest, _fields_for_method("banktransfer", 999))
    assert "1000" in error.reason
    assert "banktransfer" in error.reason


@pytest.mark.parametrize("pgcode", ["ssgpay", "samsungpay"])
def test_payment_request_requires_service_name_for_ssgpay_and_samsungpay(pgcode: str) -> None:
    assert (
        refused(PaymentRequest, payment_fields(pgcode=pgcode, service_name=None)).field
        == "service_name"
    )


def test_payment_request_allows_no_service_name_for_other_methods() -> None:
    assert payment(service_name=None).service_name is None


def test_voucher_may_be_requested_without_an_amount() -> None:
    req = payment(pgcode="voucher", amount=None, taxfree_amount=None, tax_amount=None)
    assert req.amount is None
    assert "amount" not in req.to_wire()
    assert req.effective_tax_amount() is None


def test_voucher_without_amount_refuses_a_tax_split() -> None:
    fields = payment_fields(pgcode="voucher", amount=None, taxfree_amount=100, tax_amount=None)
    assert refused(PaymentRequest, fields).field == "amount"


@pytest.mark.parametrize("pgcode", ["creditcard", "mobile", "culture"])
def test_other_methods_require_an_amount(pgcode: str) -> None:
    fields = payment_fields(pgcode=pgcode, amount=None, taxfree_amount=None, tax_amount=None)
    assert refused(PaymentRequest, fields).field == "amount"


@pytest.mark.parametrize("autopay_flag", [None, "N"])
def test_amount_zero_is_refused_for_an_ordinary_payment(autopay_flag: str | None) -> None:
    fields = payment_fields(amount=0, taxfree_amount=0, tax_amount=0, autopay_flag=autopay_flag)
    error = refused(PaymentRequest, fields)
    assert error.field == "amount"
    assert "autopay" in error.reason


def test_amount_zero_is_allowed_for_a_billkey_only_autopay_registration() -> None:
    req = payment(amount=0, taxfree_amount=0, tax_amount=0, autopay_flag="Y")
    assert req.amount == 0


def test_autopay_registration_is_refused_for_methods_without_autopay() -> None:
    fields = payment_fields(pgcode="kakaopay", autopay_flag="Y")
    assert refused(PaymentRequest, fields).field == "autopay_flag"


MONEY_FIELDS = ["amount", "taxfree_amount", "tax_amount", "disposable_cup_deposit"]


@pytest.mark.parametrize("field", MONEY_FIELDS)
@pytest.mark.parametrize("value", [1000.0, 100.5, True, False, "1000", -1])
def test_payment_request_money_must_be_a_non_negative_int(field: str, value: object) -> None:
    assert refused(PaymentRequest, payment_fields(**{field: value})).field == field


@pytest.mark.parametrize("field", ["amount", "taxfree_amount", "tax_amount"])
@pytest.mark.parametrize("value", [1000.0, True, "1000"])
def test_autopay_and_partial_cancel_money_must_be_int(field: str, value: object) -> None:
    assert refused(AutopayRequest, autopay_fields(**{field: value})).field == field
    assert refused(PartialCancelRequest, partial_cancel_fields(**{field: value})).field == field


def test_taxfree_amount_may_equal_but_not_exceed_amount() -> None:
    assert payment(taxfree_amount=1000, tax_amount=0).taxfree_amount == 1000
    assert (
        refused(PaymentRequest, payment_fields(taxfree_amount=1001, tax_amount=None)).field
        == "taxfree_amount"
    )


def test_tax_amount_may_not_exceed_the_taxable_part() -> None:
    assert payment(taxfree_amount=100, tax_amount=900).tax_amount == 900
    assert (
        refused(PaymentRequest, payment_fields(taxfree_amount=100, tax_amount=901)).field
        == "tax_amount"
    )


def test_effective_tax_amount_prefers_the_given_value() -> None:
    assert payment(taxfree_amount=100, tax_amount=20).effective_tax_amount() == 20


def test_effective_tax_amount_defaults_to_a_half_up_eleventh_of_the_taxable_part() -> None:
    assert payment(taxfree_amount=100, tax_amount=None).effective_tax_amount() == 82
    assert (
        payment(
            taxfree_amount=None, tax_amount=None, amount=16, pgcode="mobile"
        ).effective_tax_amount()
        == 1
    )


@pytest.mark.parametrize(
    "pgcode", ["creditcard", "naverpay", "kakaopay", "toss", "ssgpay", "tmoney", "mobile"]
)
def test_disposable_cup_deposit_is_accepted_for_the_vendors_methods(pgcode: str) -> None:
    assert payment(pgcode=pgcode, disposable_cup_deposit=1000).disposable_cup_deposit == 1000


@pytest.mark.parametrize("pgcode", ["banktransfer", "payco", "samsungpay", "cashbee"])
def test_disposable_cup_deposit_is_refused_for_other_methods(pgcode: str) -> None:
    fields = payment_fields(pgcode=pgcode, amount=1000, disposable_cup_deposit=1000)
    assert refused(PaymentRequest, fields).field == "disposable_cup_deposit"


def test_disposable_cup_deposit_of_zero_is_harmless_for_any_method() -> None:
    assert payment(pgcode="banktransfer", disposable_cup_deposit=0).disposable_cup_deposit == 0


def test_payment_request_refuses_unknown_pgcode() -> None:
    assert refused(PaymentRequest, payment_fields(pgcode="bitcoin")).field == "pgcode"


def test_payment_request_refuses_result_only_pgcodes() -> None:
    assert refused(PaymentRequest, payment_fields(pgcode="navercard")).field == "pgcode"


def test_payment_request_wire_body_omits_unset_fields() -> None:
    body = payment(user_name=None, cancel_url=None).to_wire()
    assert "user_name" not in body
    assert "cancel_url" not in body
    assert body["amount"] == 1000
    assert isinstance(body["amount"], int)


def test_payment_requests_are_frozen() -> None:
    req = payment()
    with pytest.raises(ValidationError):
        req.amount = 1  # type: ignore[misc]


# --- AutopayRequest -----------------------------------------------------------------------


def test_autopay_order_no_may_be_50_characters_unlike_payment_requests() -> None:
    assert build_request(AutopayRequest, **autopay_fields(order_no="o" * 50)).order_no == "o" * 50
    assert refused(AutopayRequest, autopay_fields(order_no="o" * 51)).field == "order_no"
    assert refused(PaymentRequest, payment_fields(order_no="o" * 41)).field == "order_no"


@pytest.mark.parametrize("pgcode", ["kakaopay", "naverpay", "banktransfer", "virtualaccount"])
def test_autopay_is_refused_for_methods_without_autopay(pgcode: str) -> None:
    error = refused(AutopayRequest, autopay_fields(pgcode=pgcode))
    assert error.field == "pgcode"
    assert "autopay" in error.reason


@pytest.mark.parametrize("pgcode", ["creditcard", "payco", "checkpay", "mobile"])
def test_autopay_is_accepted_for_methods_with_autopay(pgcode: str) -> None:
    assert build_request(AutopayRequest, **autopay_fields(pgcode=pgcode)).pgcode == pgcode


def test_autopay_refuses_amounts_below_the_method_minimum_including_zero() -> None:
    assert (
        refused(
            AutopayRequest,
            autopay_fields(pgcode="checkpay", amount=999, taxfree_amount=0, tax_amount=0),
        ).field
        == "amount"
    )
    assert (
        refused(AutopayRequest, autopay_fields(amount=0, taxfree_amount=0, tax_amount=0)).field
        == "amount"
    )


def test_autopay_billkey_is_limited_to_40_characters() -> None:
    assert build_request(AutopayRequest, **autopay_fields(billkey="b" * 40))
    assert refused(AutopayRequest, autopay_fields(billkey="b" * 41)).field == "billkey"
    assert refused(AutopayRequest, autopay_fields(billkey="")).field == "billkey"


@pytest.mark.parametrize("ip_addr", ["not-an-ip", "1" * 31, "", "999.1.1.1"])
def test_ip_addr_must_be_an_ip_of_at_most_30_characters(ip_addr: str) -> None:
    assert refused(AutopayRequest, autopay_fields(ip_addr=ip_addr)).field == "ip_addr"
    assert refused(CancelRequest, cancel_fields(ip_addr=ip_addr)).field == "ip_addr"


@pytest.mark.parametrize("ip_addr", ["127.0.0.1", "2001:db8::1"])
def test_ip_addr_accepts_ipv4_and_short_ipv6(ip_addr: str) -> None:
    assert build_request(CancelRequest, **cancel_fields(ip_addr=ip_addr)).ip_addr == ip_addr


def test_autopay_cup_deposit_only_for_card_per_the_autopay_page() -> None:
    assert build_request(AutopayRequest, **autopay_fields(disposable_cup_deposit=500))
    fields = autopay_fields(pgcode="mobile", disposable_cup_deposit=500)
    assert refused(AutopayRequest, fields).field == "disposable_cup_deposit"


# --- cancels ------------------------------------------------------------------------------


def test_cancel_pgcode_is_optional() -> None:
    assert build_request(CancelRequest, **cancel_fields(pgcode=None)).pgcode is None


def test_cancel_accepts_the_pgcode_a_result_reported() -> None:
    assert build_request(CancelRequest, **cancel_fields(pgcode="navercard")).pgcode == "navercard"


def test_cancel_is_refused_for_virtual_accounts() -> None:
    assert refused(CancelRequest, cancel_fields(pgcode="virtualaccount")).field == "pgcode"


def test_cancel_tid_is_limited_to_40_characters() -> None:
    assert build_request(CancelRequest, **cancel_fields(tid="t" * 40))
    assert refused(CancelRequest, cancel_fields(tid="t" * 41)).field == "tid"
    assert refused(PartialCancelRequest, partial_cancel_fields(tid="t" * 41)).field == "tid"


@pytest.mark.parametrize("pgcode", ["checkpay", "phonebill", "voucher", "tmoney", "virtualaccount"])
def test_partial_cancel_is_refused_for_methods_without_it(pgcode: str) -> None:
    error = refused(PartialCancelRequest, partial_cancel_fields(pgcode=pgcode))
    assert error.field == "pgcode"


def test_partial_cancel_needs_a_pgcode() -> None:
    fields = partial_cancel_fields()
    del fields["pgcode"]
    assert refused(PartialCancelRequest, fields).field == "pgcode"


@pytest.mark.parametrize("pgcode", ["mobile", "navercard", "smilecash", "creditcard"])
def test_partial_cancel_is_accepted_for_methods_with_it(pgcode: str) -> None:
    assert build_request(PartialCancelRequest, **partial_cancel_fields(pgcode=pgcode))


def test_partial_cancel_amount_must_be_positive() -> None:
    fields = partial_cancel_fields(amount=0, taxfree_amount=0, tax_amount=0)
    assert refused(PartialCancelRequest, fields).field == "amount"


def test_partial_cancel_split_may_not_exceed_the_amount() -> None:
    assert (
        refused(
            PartialCancelRequest,
            partial_cancel_fields(amount=100, taxfree_amount=101, tax_amount=None),
        ).field
        == "taxfree_amount"
    )


# --- other requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"), [("type", "3"), ("tax_flag", "X"), ("return_url", "ftp://x")]
)
def test_cash_receipt_request_checks_type_tax_flag_and_url(field: str, value: str) -> None:
    fields = {
        "client_id": "pay_test",
        "type": "0",
        "tax_flag": "N",
        "return_url": "https://shop.test/r",
    }
    fields[field] = value
    assert refused(CashReceiptRequest, fields).field == field


def test_transaction_list_query_accepts_a_date_or_yyyymmdd_text() -> None:
    by_date = build_request(
        TransactionListQuery, client_id="pay_test", date=date(2018, 9, 18), date_type="transaction"
    )
    by_text = build_request(
        TransactionListQuery, client_id="pay_test", date="20180918", date_type="settle"
    )
    assert by_date.date == by_text.date == date(2018, 9, 18)


def test_transaction_list_query_turns_an_aware_datetime_into_its_korean_day() -> None:
    query = build_request(
        TransactionListQuery,
        client_id="pay_test",
        date=datetime(2018, 9, 17, 15, 0, tzinfo=UTC),
        date_type="transaction",
    )
    assert query.to_query()["date"] == "20180918"


def test_transaction_list_query_refuses_unknown_date_type_and_pgcode() -> None:
    assert (
        refused(
            TransactionListQuery,
            {"client_id": "pay_test", "date": date(2018, 9, 18), "date_type": "daily"},
        ).field
        == "date_type"
    )
    assert (
        refused(
            TransactionListQuery,
            {
                "client_id": "pay_test",
                "date": date(2018, 9, 18),
                "date_type": "settle",
                "pgcode": "bitcoin",
            },
        ).field
        == "pgcode"
    )


def test_merchant_credentials_are_frozen_and_limit_client_id_to_20() -> None:
    with pytest.raises(ValidationError):
        MerchantCredentials.model_validate(
            {"client_id": "c" * 21, "payment_key": "p", "search_key": "s"}
        )
    valid = MerchantCredentials.model_validate(
        {"client_id": "pay_test", "payment_key": "p", "search_key": "s"}
    )
    with pytest.raises(ValidationError):
        valid.client_id = "other"  # type: ignore[misc]


def test_build_request_raises_payletter_error_not_pydantic_error() -> None:
    with pytest.raises(PayletterValidationError) as caught:
        build_request(PaymentRequest, **payment_fields(amount=1))
    assert isinstance(caught.value, PayletterError)
    assert not isinstance(caught.value, ValidationError)
    assert caught.value.field == "amount"
    assert "amount" in str(caught.value)


def test_validation_error_mentions_how_many_more_problems_there_are() -> None:
    error = refused(PaymentRequest, payment_fields(user_id="u" * 51, order_no="o" * 41))
    assert error.field == "user_id"
    assert "1 more problem" in error.reason


# --- responses ----------------------------------------------------------------------------


def test_payment_window_keeps_a_big_numeric_token_exactly_as_text() -> None:
    window = PaymentWindow.model_validate_json(
        '{"token": 153438847514600001, "online_url": "https://o", "mobile_url": "https://m"}'
    )
    assert window.token == "153438847514600001"


def test_payment_window_refuses_a_float_token() -> None:
    with pytest.raises(ValidationError):
        PaymentWindow.model_validate({"token": 1.5e17, "online_url": "o", "mobile_url": "m"})


def test_autopay_and_cancel_results_have_aware_korean_datetimes() -> None:
    autopay = AutopayResult.model_validate(
        {
            "tid": "t",
            "cid": "c",
            "amount": 1000,
            "billkey": "b",
            "transaction_date": "2018-01-01 23:59:59",
        }
    )
    cancel = CancelResult.model_validate(
        {"tid": "t", "cid": "c", "amount": "1000", "cancel_date": "2018-01-01 23:59:59"}
    )
    for moment in (autopay.transaction_date, cancel.cancel_date):
        assert moment == datetime(2018, 1, 1, 23, 59, 59, tzinfo=KST)
        assert moment.utcoffset() == timedelta(hours=9)
    assert cancel.amount == 1000


def test_transaction_cancel_date_empty_string_means_none() -> None:
    item = Transaction.model_validate(
        {
            "pgcode": "mobile",
            "user_id": "u",
            "user_name": "n",
            "tid": "t",
            "cid": "c",
            "amount": 100,
            "taxfree_amount": 0,
            "tax_amount": 9,
            "order_no": "o",
            "product_name": "p",
            "status_code": "0",
            "transaction_date": "2018-09-18 09:53:25",
            "cancel_date": "",
        }
    )
    assert item.cancel_date is None
    assert item.status_code == 0


@pytest.mark.parametrize("status_code", [3, -1, "x", True])
def test_transaction_status_code_is_0_1_or_2(status_code: object) -> None:
    with pytest.raises(ValidationError):
        Transaction.model_validate(
            {
                "pgcode": "mobile",
                "user_id": "u",
                "tid": "t",
                "amount": 1,
                "taxfree_amount": 0,
                "tax_amount": 0,
                "status_code": status_code,
                "transaction_date": "2018-09-18 09:53:25",
            }
        )


def test_transaction_list_accepts_the_wire_name_list() -> None:
    parsed = TransactionList.model_validate({"total_count": 0, "list": []})
    assert parsed.items == []


@pytest.mark.parametrize("status_code", [0, 6, "9"])
def test_payment_status_code_is_1_to_5(status_code: object) -> None:
    with pytest.raises(ValidationError):
        PaymentStatus.model_validate(
            {
                "code": 0,
                "message": "ok",
                "client_id": "c",
                "order_no": "o",
                "token": "1",
                "status_code": status_code,
            }
        )


def test_money_in_responses_refuses_booleans() -> None:
    with pytest.raises(ValidationError):
        CancelResult.model_validate(
            {"tid": "t", "cid": "c", "amount": True, "cancel_date": "2018-01-01 23:59:59"}
        )
