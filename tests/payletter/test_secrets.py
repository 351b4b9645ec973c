"""Keys, billkeys and full payhashes never show up in reprs, messages or logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from app.payletter.client import PayletterClient
from app.payletter.errors import (
    BusinessRuleError,
    PayletterAPIError,
    PayletterTimeout,
    PayletterValidationError,
    UnknownMerchantError,
)
from app.payletter.models import AutopayRequest, AutopayResult, MerchantCredentials, build_request
from app.payletter.payhash import compute_payhash, mask_payhash

from .support import (
    AUTO_PAYMENT_KEY,
    BILLKEY,
    MERCHANTS,
    PAY_TEST,
    PAYMENT_KEY,
    SEARCH_KEY,
    SECRETS,
    MakeHarness,
    autopay_fields,
    json_response,
)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_credentials_repr_and_str_hide_both_keys() -> None:
    assert_no_secret(repr(PAY_TEST))
    assert_no_secret(str(PAY_TEST))
    assert_no_secret(PAY_TEST.model_dump_json())
    assert PAY_TEST.payment_key.get_secret_value() == PAYMENT_KEY


def test_autopay_request_hides_the_billkey_except_on_the_wire() -> None:
    req = build_request(AutopayRequest, **autopay_fields())
    assert_no_secret(repr(req))
    assert_no_secret(str(req))
    assert_no_secret(req.model_dump_json())
    assert_no_secret(str(req.model_dump(mode="json")))
    assert req.to_wire()["billkey"] == BILLKEY


def test_autopay_result_hides_the_billkey() -> None:
    result = AutopayResult.model_validate(
        {
            "tid": "t",
            "cid": "c",
            "amount": 1,
            "billkey": BILLKEY,
            "transaction_date": "2018-01-01 00:00:00",
        }
    )
    assert_no_secret(repr(result))
    assert_no_secret(result.model_dump_json())


def test_an_overlong_billkey_is_not_echoed_in_validation_errors() -> None:
    overlong = BILLKEY * 3
    with pytest.raises(PayletterValidationError) as caught:
        build_request(AutopayRequest, **autopay_fields(billkey=overlong))
    assert BILLKEY not in str(caught.value)
    assert BILLKEY not in repr(caught.value)
    with pytest.raises(ValidationError) as raw:
        AutopayRequest(**autopay_fields(billkey=overlong))
    assert BILLKEY not in str(raw.value)


def test_credentials_with_a_bad_client_id_do_not_echo_the_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        MerchantCredentials(
            client_id="c" * 21, payment_key=SecretStr(PAYMENT_KEY), search_key=SecretStr(SEARCH_KEY)
        )
    assert_no_secret(str(caught.value))


async def test_client_repr_lists_merchants_but_no_keys() -> None:
    async with PayletterClient(base_url="https://payletter.test", merchants=MERCHANTS) as client:
        assert "pay_test" in repr(client)
        assert_no_secret(repr(client))


def test_error_strings_never_contain_keys() -> None:
    errors: list[Exception] = [
        UnknownMerchantError("nobody"),
        PayletterValidationError("billkey", "too long"),
        PayletterTimeout(
            "ReadTimeout", may_have_reached_payletter=True, endpoint="v1.0/payments/autopay"
        ),
        BusinessRuleError(406, 3000, "refused", "v1.0/payments/cancel/partial"),
    ]
    for error in errors:
        assert_no_secret(str(error))
        assert_no_secret(repr(error))


async def test_a_server_message_that_echoes_our_key_is_redacted(make_harness: MakeHarness) -> None:
    h = make_harness(
        json_response(
            401, {"code": 998, "message": f"bad key PLKEY {AUTO_PAYMENT_KEY} for {BILLKEY}"}
        )
    )
    with pytest.raises(PayletterAPIError) as caught:
        await h.client.autopay(build_request(AutopayRequest, **autopay_fields()))
    assert_no_secret(str(caught.value))
    assert_no_secret(caught.value.message)
    assert "[redacted]" in caught.value.message


async def test_logs_of_successful_and_failed_calls_hold_no_secret(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    autopay_ok = json_response(
        200,
        {
            "tid": "t",
            "cid": "c",
            "amount": 1000,
            "billkey": BILLKEY,
            "transaction_date": "2018-01-01 00:00:00",
        },
    )
    h = make_harness(autopay_ok)
    await h.client.autopay(build_request(AutopayRequest, **autopay_fields()))
    failing = make_harness(httpx.ReadTimeout)
    with pytest.raises(PayletterTimeout):
        await failing.client.autopay(build_request(AutopayRequest, **autopay_fields()))
    assert caplog.records
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert_no_secret(logged)
    assert "PLKEY" not in logged
    assert "v1.0/payments/autopay" in logged
    assert "status=200" in logged


async def test_each_call_is_logged_at_info_with_endpoint_status_and_elapsed_ms(
    make_harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.payletter.client")
    h = make_harness(json_response(200, {"receipt_url": "https://r"}))
    await h.client.receipt_info("pay_test", "tpay_test-1")
    ours = [r for r in caplog.records if r.name == "app.payletter.client"]
    assert len(ours) == 1
    assert ours[0].levelno == logging.INFO
    assert "v1.0/receipt/info/{tid}" in ours[0].getMessage()
    assert "status=200" in ours[0].getMessage()
    assert "elapsed_ms=" in ours[0].getMessage()


def test_masked_payhash_cannot_be_the_full_payhash() -> None:
    full = compute_payhash("u", 1000, "t", PAYMENT_KEY)
    masked = mask_payhash(full)
    assert full not in masked
    assert len(masked.rstrip("…")) == 8
