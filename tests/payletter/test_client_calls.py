"""Each of the nine operations: method, path, key type, body/query, parsed result."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from app.kit.korea_time import KST
from app.payletter.client import PayletterClient
from app.payletter.errors import PayletterValidationError, UnknownMerchantError
from app.payletter.models import (
    AutopayRequest,
    CancelRequest,
    CashReceiptRequest,
    PartialCancelRequest,
    PaymentRequest,
    TransactionListQuery,
    build_request,
)

from .support import (
    AUTO_PAYMENT_KEY,
    BILLKEY,
    MERCHANTS,
    PAYMENT_KEY,
    SEARCH_KEY,
    MakeHarness,
    autopay_fields,
    cancel_fields,
    json_response,
    partial_cancel_fields,
    payment_fields,
)

WINDOW = {
    "token": 153438847514600001,
    "online_url": "https://testpg.payletter.com/pgsvc/hub.asp?location=online&token=1",
    "mobile_url": "https://testpg.payletter.com/pgsvc/hub.asp?location=mobile&token=1",
}
CANCEL_RESULT = {
    "tid": "tpay_test201801012359590003",
    "cid": "123456",
    "amount": 1000,
    "cancel_date": "2018-01-01 23:59:59",
}


def body_of(request: httpx.Request) -> dict[str, object]:
    parsed = json.loads(request.content)
    assert isinstance(parsed, dict)
    return parsed


def assert_post_with_key(request: httpx.Request, path: str, key: str) -> None:
    assert request.method == "POST"
    assert request.url.path == path
    assert request.headers["Authorization"] == f"PLKEY {key}"
    assert request.headers["Content-Type"] == "application/json"


def assert_get_with_key(request: httpx.Request, path: str, key: str) -> None:
    assert request.method == "GET"
    assert request.url.path == path
    assert request.headers["Authorization"] == f"PLKEY {key}"
    assert not request.content


async def test_request_payment_posts_the_body_with_the_payment_key(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, WINDOW))
    req = build_request(PaymentRequest, **payment_fields(user_name=None))
    window = await h.client.request_payment(req)
    assert_post_with_key(h.fake.last, "/v1.0/payments/request", PAYMENT_KEY)
    body = body_of(h.fake.last)
    assert body == req.to_wire()
    assert body["amount"] == 1000
    assert body["pgcode"] == "creditcard"
    assert body["product_name"] == "테스트상품"
    assert "user_name" not in body  # None fields are not sent
    assert window.token == "153438847514600001"
    assert window.online_url == WINDOW["online_url"]
    assert window.mobile_url == WINDOW["mobile_url"]


async def test_request_autopay_registration_forces_autopay_flag_y(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, WINDOW))
    req = build_request(PaymentRequest, **payment_fields(autopay_flag="N"))
    await h.client.request_autopay_registration(req)
    assert_post_with_key(h.fake.last, "/v1.0/payments/request", PAYMENT_KEY)
    assert body_of(h.fake.last)["autopay_flag"] == "Y"


async def test_request_autopay_registration_allows_amount_zero(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(200, WINDOW))
    # Built with autopay_flag="Y" here; the client would force it anyway.
    req = build_request(
        PaymentRequest,
        **payment_fields(
            client_id="auto_test", amount=0, taxfree_amount=0, tax_amount=0, autopay_flag="Y"
        ),
    )
    await h.client.request_autopay_registration(req)
    assert body_of(h.fake.last)["amount"] == 0
    assert h.fake.last.headers["Authorization"] == f"PLKEY {AUTO_PAYMENT_KEY}"


async def test_request_autopay_registration_refuses_methods_without_autopay_before_sending(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, WINDOW))
    req = build_request(PaymentRequest, **payment_fields(pgcode="kakaopay"))
    with pytest.raises(PayletterValidationError) as caught:
        await h.client.request_autopay_registration(req)
    assert caught.value.field == "autopay_flag"
    assert h.fake.attempts == 0


async def test_autopay_posts_the_revealed_billkey_and_parses_the_result(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(
        json_response(
            200,
            {
                "tid": "tpay_test201801012359590003",
                "cid": "123456",
                "amount": 1000,
                "billkey": BILLKEY,
                "transaction_date": "2018-01-01 23:59:59",
            },
        )
    )
    result = await h.client.autopay(build_request(AutopayRequest, **autopay_fields()))
    assert_post_with_key(h.fake.last, "/v1.0/payments/autopay", AUTO_PAYMENT_KEY)
    body = body_of(h.fake.last)
    assert body["billkey"] == BILLKEY
    assert body["ip_addr"] == "127.0.0.1"
    assert body["amount"] == 1000
    assert result.tid == "tpay_test201801012359590003"
    assert result.amount == 1000
    assert isinstance(result.billkey, SecretStr)
    assert result.billkey.get_secret_value() == BILLKEY
    assert result.transaction_date == datetime(2018, 1, 1, 23, 59, 59, tzinfo=KST)
    assert result.transaction_date.utcoffset() == timedelta(hours=9)


async def test_cancel_posts_to_payments_cancel_with_the_payment_key(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, CANCEL_RESULT))
    result = await h.client.cancel(build_request(CancelRequest, **cancel_fields()))
    assert_post_with_key(h.fake.last, "/v1.0/payments/cancel", PAYMENT_KEY)
    assert body_of(h.fake.last) == {
        "pgcode": "mobile",
        "client_id": "pay_test",
        "user_id": "test_user_id",
        "tid": "tpay_test2018010123595900001",
        "ip_addr": "127.0.0.1",
    }
    assert result.amount == 1000
    assert result.cancel_date == datetime(2018, 1, 1, 23, 59, 59, tzinfo=KST)


async def test_cancel_without_pgcode_leaves_it_out_of_the_body(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(200, CANCEL_RESULT))
    await h.client.cancel(build_request(CancelRequest, **cancel_fields(pgcode=None)))
    assert "pgcode" not in body_of(h.fake.last)


async def test_cancel_partial_posts_amount_and_split(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(200, CANCEL_RESULT))
    result = await h.client.cancel_partial(
        build_request(PartialCancelRequest, **partial_cancel_fields())
    )
    assert_post_with_key(h.fake.last, "/v1.0/payments/cancel/partial", PAYMENT_KEY)
    body = body_of(h.fake.last)
    assert (body["amount"], body["taxfree_amount"], body["tax_amount"]) == (1000, 100, 20)
    assert body["pgcode"] == "mobile"
    assert result.cancel_date.tzinfo is not None


async def test_issue_cash_receipt_posts_to_the_tid_path(make_harness: MakeHarness) -> None:
    receipt = "https://testpg.payletter.com/PGSVC/Receipt/ReceiptForm.asp?id=x"
    h = make_harness(json_response(200, {"receipt_url": receipt}))
    req = build_request(
        CashReceiptRequest,
        client_id="pay_test",
        type="0",
        tax_flag="N",
        return_url="https://shop.test/r",
    )
    result = await h.client.issue_cash_receipt("tpay_test-201904097449610", req)
    assert_post_with_key(
        h.fake.last, "/v1.0/cashreceipt/issue/tpay_test-201904097449610", PAYMENT_KEY
    )
    assert body_of(h.fake.last) == {
        "client_id": "pay_test",
        "type": "0",
        "tax_flag": "N",
        "return_url": "https://shop.test/r",
    }
    assert result.receipt_url == receipt


async def test_issue_cash_receipt_percent_encodes_the_tid_segment(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, {"receipt_url": "https://r"}))
    req = build_request(CashReceiptRequest, client_id="pay_test", return_url="https://shop.test/r")
    await h.client.issue_cash_receipt("a/b c?d", req)
    assert h.fake.last.url.raw_path == b"/v1.0/cashreceipt/issue/a%2Fb%20c%3Fd"


async def test_issue_cash_receipt_refuses_an_overlong_tid(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(200, {"receipt_url": "https://r"}))
    req = build_request(CashReceiptRequest, client_id="pay_test", return_url="https://shop.test/r")
    with pytest.raises(PayletterValidationError) as caught:
        await h.client.issue_cash_receipt("t" * 41, req)
    assert caught.value.field == "tid"
    assert h.fake.attempts == 0


TRANSACTION_LIST = {
    "total_count": 2,
    "list": [
        {
            "pgcode": "oncash",
            "user_id": "test_user_id",
            "user_name": "테스터",
            "tid": "tpay_test-201809142506687",
            "cid": "2506686",
            "amount": 1000,
            "taxfree_amount": 100,
            "tax_amount": 20,
            "order_no": "1234567890",
            "product_name": "테스트상품",
            "status_code": 1,
            "transaction_date": "2018-09-14 17:25:36",
            "cancel_date": "2018-09-18 09:52:29",
        },
        {
            "pgcode": "mobile",
            "user_id": "test_user_id",
            "user_name": "테스터",
            "tid": "tpay_test-201809182509659",
            "cid": "20180918095312998861",
            "amount": 100,
            "taxfree_amount": 100,
            "tax_amount": 20,
            "order_no": "1234567890",
            "product_name": "테스트상품",
            "status_code": 0,
            "transaction_date": "2018-09-18 09:53:25",
            "cancel_date": "",
        },
    ],
}


async def test_transaction_list_gets_with_the_search_key_and_query(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, TRANSACTION_LIST))
    query = build_request(
        TransactionListQuery, client_id="pay_test", date=date(2018, 9, 18), date_type="transaction"
    )
    result = await h.client.transaction_list(query)
    assert_get_with_key(h.fake.last, "/v1.0/payments/transaction/list", SEARCH_KEY)
    assert dict(h.fake.last.url.params) == {
        "client_id": "pay_test",
        "date": "20180918",
        "date_type": "transaction",
    }
    assert result.total_count == 2
    first, second = result.items
    assert first.status_code == 1
    assert first.transaction_date == datetime(2018, 9, 14, 17, 25, 36, tzinfo=KST)
    assert first.cancel_date == datetime(2018, 9, 18, 9, 52, 29, tzinfo=KST)
    assert second.cancel_date is None
    assert second.amount == 100


async def test_transaction_list_sends_pgcode_only_when_given(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(200, {"total_count": 0, "list": []}))
    query = build_request(
        TransactionListQuery,
        client_id="pay_test",
        date=date(2018, 9, 18),
        date_type="settle",
        pgcode="mobile",
    )
    result = await h.client.transaction_list(query)
    assert h.fake.last.url.params["pgcode"] == "mobile"
    assert h.fake.last.url.params["date_type"] == "settle"
    assert result.items == []


async def test_payment_status_posts_with_the_payment_key(make_harness: MakeHarness) -> None:
    h = make_harness(
        json_response(
            200,
            {
                "code": "0",
                "message": "ok",
                "client_id": "pay_test",
                "order_no": "pay_test2023118164578",
                "token": "170202154314200189",
                "tid": "tpay_test-202312082315563",
                "status_code": 5,
            },
        )
    )
    status = await h.client.payment_status("pay_test", "pay_test2023118164578")
    assert_post_with_key(h.fake.last, "/v1.0/payments/status", PAYMENT_KEY)
    assert body_of(h.fake.last) == {"client_id": "pay_test", "order_no": "pay_test2023118164578"}
    assert status.code == 0
    assert status.status_code == 5
    assert status.token == "170202154314200189"
    assert status.tid == "tpay_test-202312082315563"


async def test_payment_status_without_a_tid_yet_reports_none(make_harness: MakeHarness) -> None:
    h = make_harness(
        json_response(
            200,
            {
                "code": 0,
                "message": "ok",
                "client_id": "pay_test",
                "order_no": "o",
                "token": 170202154314200189,
                "tid": "",
                "status_code": 2,
            },
        )
    )
    status = await h.client.payment_status("pay_test", "o")
    assert status.tid is None
    assert status.token == "170202154314200189"


async def test_payment_status_refuses_an_overlong_order_no_before_sending(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, {}))
    with pytest.raises(PayletterValidationError) as caught:
        await h.client.payment_status("pay_test", "o" * 41)
    assert caught.value.field == "order_no"
    assert h.fake.attempts == 0


async def test_receipt_info_gets_the_tid_path_with_the_search_key(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, {"receipt_url": "https://testpg.payletter.com/r?id=1"}))
    result = await h.client.receipt_info("pay_test", "tsktest1-202201039368273")
    assert_get_with_key(h.fake.last, "/v1.0/receipt/info/tsktest1-202201039368273", SEARCH_KEY)
    assert dict(h.fake.last.url.params) == {"client_id": "pay_test"}
    assert result.receipt_url == "https://testpg.payletter.com/r?id=1"


@pytest.mark.parametrize(
    ("base_url", "expected_path"),
    [
        ("https://payletter.test", "/v1.0/payments/status"),
        ("https://payletter.test/", "/v1.0/payments/status"),
        ("http://127.0.0.1:8001/sim", "/sim/v1.0/payments/status"),
        ("http://127.0.0.1:8001/sim/", "/sim/v1.0/payments/status"),
    ],
)
async def test_base_url_is_joined_with_or_without_a_trailing_slash(
    make_harness: MakeHarness, base_url: str, expected_path: str
) -> None:
    h = make_harness(
        json_response(
            200,
            {"code": 0, "client_id": "pay_test", "order_no": "o", "token": "1", "status_code": 1},
        ),
        base_url=base_url,
    )
    await h.client.payment_status("pay_test", "o")
    assert h.fake.last.url.path == expected_path


async def test_unknown_client_id_raises_unknown_merchant_without_sending(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, WINDOW))
    req = build_request(PaymentRequest, **payment_fields(client_id="stranger"))
    with pytest.raises(UnknownMerchantError) as caught:
        await h.client.request_payment(req)
    assert caught.value.field == "client_id"
    assert h.fake.attempts == 0


async def test_client_revalidates_requests_built_without_validation(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, WINDOW))
    sneaky = PaymentRequest.model_construct(**payment_fields(amount=1.5))
    with pytest.raises(PayletterValidationError) as caught:
        await h.client.request_payment(sneaky)
    assert caught.value.field == "amount"
    assert h.fake.attempts == 0


async def test_client_refuses_merchant_maps_keyed_by_another_client_id() -> None:
    with pytest.raises(ValueError, match="another id"):
        PayletterClient(
            base_url="https://payletter.test", merchants={"other": MERCHANTS["pay_test"]}
        )


@pytest.mark.parametrize("base_url", ["payletter.test", "ftp://payletter.test", ""])
async def test_client_refuses_base_urls_that_are_not_http(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        PayletterClient(base_url=base_url, merchants=MERCHANTS)


async def test_aclose_closes_only_an_http_client_the_client_created() -> None:
    shared = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    borrowed = PayletterClient(base_url="https://payletter.test", merchants=MERCHANTS, http=shared)
    await borrowed.aclose()
    assert not shared.is_closed
    await shared.aclose()

    async with PayletterClient(base_url="https://payletter.test", merchants=MERCHANTS) as owned:
        own_http = owned._http
    assert own_http.is_closed
