"""Error bodies, transport failures and the retry policy (counted at the transport)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import date

import httpx
import pytest

from app.payletter.client import PayletterClient
from app.payletter.errors import (
    AuthenticationError,
    BusinessRuleError,
    MethodNotAllowedError,
    PayletterAPIError,
    PayletterConnectionError,
    PayletterServerError,
    PayletterTimeout,
    PayletterTransportError,
    PermissionDeniedError,
    UnexpectedResponseError,
)
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
    MERCHANTS,
    MakeHarness,
    autopay_fields,
    cancel_fields,
    json_response,
    partial_cancel_fields,
    payment_fields,
)

Call = Callable[[PayletterClient], Awaitable[object]]

CANCEL_RESULT: dict[str, object] = {
    "tid": "t",
    "cid": "c",
    "amount": 1000,
    "cancel_date": "2018-01-01 23:59:59",
}
STATUS_RESULT: dict[str, object] = {
    "code": 0,
    "client_id": "pay_test",
    "order_no": "o",
    "token": "1",
    "status_code": 4,
}
LIST_RESULT: dict[str, object] = {"total_count": 0, "list": []}
RECEIPT_RESULT: dict[str, object] = {"receipt_url": "https://r"}
WINDOW_RESULT: dict[str, object] = {
    "token": 1,
    "online_url": "https://o",
    "mobile_url": "https://m",
}
AUTOPAY_RESULT: dict[str, object] = {
    "tid": "t",
    "cid": "c",
    "amount": 1000,
    "billkey": "b",
    "transaction_date": "2018-01-01 23:59:59",
}


def request_payment(client: PayletterClient) -> Awaitable[object]:
    return client.request_payment(build_request(PaymentRequest, **payment_fields()))


def request_autopay_registration(client: PayletterClient) -> Awaitable[object]:
    return client.request_autopay_registration(build_request(PaymentRequest, **payment_fields()))


def autopay(client: PayletterClient) -> Awaitable[object]:
    return client.autopay(build_request(AutopayRequest, **autopay_fields()))


def cancel(client: PayletterClient) -> Awaitable[object]:
    return client.cancel(build_request(CancelRequest, **cancel_fields()))


def cancel_partial(client: PayletterClient) -> Awaitable[object]:
    return client.cancel_partial(build_request(PartialCancelRequest, **partial_cancel_fields()))


def issue_cash_receipt(client: PayletterClient) -> Awaitable[object]:
    req = build_request(CashReceiptRequest, client_id="pay_test", return_url="https://shop.test/r")
    return client.issue_cash_receipt("tpay_test-1", req)


def transaction_list(client: PayletterClient) -> Awaitable[object]:
    query = build_request(
        TransactionListQuery, client_id="pay_test", date=date(2018, 9, 18), date_type="transaction"
    )
    return client.transaction_list(query)


def payment_status(client: PayletterClient) -> Awaitable[object]:
    return client.payment_status("pay_test", "o")


def receipt_info(client: PayletterClient) -> Awaitable[object]:
    return client.receipt_info("pay_test", "tpay_test-1")


# (call, a valid 200 body for it)
MONEY_CALLS: list[tuple[Call, dict[str, object]]] = [
    (request_payment, WINDOW_RESULT),
    (request_autopay_registration, WINDOW_RESULT),
    (autopay, AUTOPAY_RESULT),
    (cancel, CANCEL_RESULT),
    (cancel_partial, CANCEL_RESULT),
    (issue_cash_receipt, RECEIPT_RESULT),
]
READ_ONLY_CALLS: list[tuple[Call, dict[str, object]]] = [
    (transaction_list, LIST_RESULT),
    (payment_status, STATUS_RESULT),
    (receipt_info, RECEIPT_RESULT),
]
ALL_CALLS = MONEY_CALLS + READ_ONLY_CALLS


def ids(calls: list[tuple[Call, dict[str, object]]]) -> list[str]:
    return [call.__name__ for call, _ in calls]


# --- error bodies -------------------------------------------------------------------------

ERROR_STATUSES = [
    (401, 998, AuthenticationError, "Authentication token is missing or incorrect"),
    (403, 993, PermissionDeniedError, "Yon do not have authorization."),
    (405, 995, MethodNotAllowedError, "요청된 메소드는 권한이 없습니다."),
    (406, 3010, BusinessRuleError, "부분취소가 불가한 가맹점입니다."),
    (500, 999, PayletterServerError, "Internal server error"),
]


@pytest.mark.parametrize(("status", "code", "error_cls", "message"), ERROR_STATUSES)
@pytest.mark.parametrize("shape", ["flat", "nested"])
@pytest.mark.parametrize("code_as_text", [False, True])
async def test_error_status_maps_to_its_class_from_either_body_shape(
    make_harness: MakeHarness,
    status: int,
    code: int,
    error_cls: type[PayletterAPIError],
    message: str,
    shape: str,
    code_as_text: bool,
) -> None:
    wire_code: int | str = str(code) if code_as_text else code
    error = {"code": wire_code, "message": message}
    h = make_harness(json_response(status, error if shape == "flat" else {"error": error}))
    with pytest.raises(error_cls) as caught:
        await cancel(h.client)
    exc = caught.value
    assert (exc.status_code, exc.code, exc.message) == (status, code, message)
    assert exc.endpoint == "v1.0/payments/cancel"
    text = str(exc)
    assert "\n" not in text
    for part in ("v1.0/payments/cancel", str(status), str(code), message):
        assert part in text


async def test_any_5xx_is_a_server_error(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(503, {"code": 999, "message": "busy"}))
    with pytest.raises(PayletterServerError):
        await cancel(h.client)


@pytest.mark.parametrize("status", [201, 204, 302, 400, 404, 418, 429])
async def test_other_statuses_are_unexpected_responses(
    make_harness: MakeHarness, status: int
) -> None:
    h = make_harness(json_response(status, {"code": 1, "message": "odd"}))
    with pytest.raises(UnexpectedResponseError) as caught:
        await cancel(h.client)
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [200, 401, 500])
async def test_a_non_json_body_is_an_unexpected_response(
    make_harness: MakeHarness, status: int
) -> None:
    html = httpx.Response(
        status, text="<html>gateway error</html>", headers={"content-type": "text/html"}
    )
    h = make_harness(html, max_retries=0)
    with pytest.raises(UnexpectedResponseError) as caught:
        await cancel(h.client)
    assert caught.value.status_code == status
    assert "not JSON" in str(caught.value)
    assert "<html>" not in str(caught.value)


async def test_a_200_that_does_not_match_the_model_is_an_unexpected_response(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, {"tid": "t", "amount": "lots"}))
    with pytest.raises(UnexpectedResponseError) as caught:
        await cancel(h.client)
    assert caught.value.status_code == 200
    assert "CancelResult" in str(caught.value)


async def test_a_200_carrying_an_error_body_keeps_its_code(make_harness: MakeHarness) -> None:
    h = make_harness(
        json_response(200, {"code": 998, "message": "Authentication token is missing"})
    )
    with pytest.raises(UnexpectedResponseError) as caught:
        await cancel(h.client)
    assert caught.value.code == 998


async def test_an_error_body_without_code_still_maps_by_status(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(406, {"detail": "?"}))
    with pytest.raises(BusinessRuleError) as caught:
        await cancel(h.client)
    assert caught.value.code is None
    assert caught.value.message  # falls back to the HTTP reason phrase


async def test_a_multiline_server_message_is_flattened_to_one_line(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(406, {"code": 3000, "message": "first\nsecond\r\nthird"}))
    with pytest.raises(BusinessRuleError) as caught:
        await cancel(h.client)
    assert caught.value.message == "first second third"


# --- transport failures and retries ---------------------------------------------------------


@pytest.mark.parametrize(("call", "ok_body"), READ_ONLY_CALLS, ids=ids(READ_ONLY_CALLS))
async def test_read_only_calls_retry_read_timeouts_up_to_max_retries(
    make_harness: MakeHarness, call: Call, ok_body: dict[str, object]
) -> None:
    h = make_harness(httpx.ReadTimeout, max_retries=2)
    with pytest.raises(PayletterTimeout) as caught:
        await call(h.client)
    assert h.fake.attempts == 3
    assert caught.value.may_have_reached_payletter
    assert h.sleeps == [0.2, 0.4]


@pytest.mark.parametrize(("call", "ok_body"), READ_ONLY_CALLS, ids=ids(READ_ONLY_CALLS))
async def test_read_only_calls_succeed_after_a_transient_5xx_and_disconnect(
    make_harness: MakeHarness, call: Call, ok_body: dict[str, object]
) -> None:
    h = make_harness(
        json_response(502, {"code": 999, "message": "bad gateway"}),
        httpx.RemoteProtocolError,
        json_response(200, ok_body),
    )
    assert await call(h.client) is not None
    assert h.fake.attempts == 3


@pytest.mark.parametrize(("call", "ok_body"), READ_ONLY_CALLS, ids=ids(READ_ONLY_CALLS))
async def test_read_only_calls_give_up_on_a_persistent_5xx(
    make_harness: MakeHarness, call: Call, ok_body: dict[str, object]
) -> None:
    h = make_harness(json_response(500, {"error": {"code": 999, "message": "down"}}), max_retries=1)
    with pytest.raises(PayletterServerError):
        await call(h.client)
    assert h.fake.attempts == 2


async def test_read_only_calls_do_not_retry_when_max_retries_is_zero(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(httpx.ReadTimeout, max_retries=0)
    with pytest.raises(PayletterTimeout):
        await payment_status(h.client)
    assert h.fake.attempts == 1
    assert h.sleeps == []


async def test_read_only_calls_do_not_retry_4xx(make_harness: MakeHarness) -> None:
    h = make_harness(json_response(401, {"code": 998, "message": "bad key"}))
    with pytest.raises(AuthenticationError):
        await payment_status(h.client)
    assert h.fake.attempts == 1


@pytest.mark.parametrize(("call", "ok_body"), MONEY_CALLS, ids=ids(MONEY_CALLS))
@pytest.mark.parametrize(
    ("failure", "error_cls"),
    [
        (httpx.ReadTimeout, PayletterTimeout),
        (httpx.WriteTimeout, PayletterTimeout),
        (httpx.ReadError, PayletterConnectionError),
        (httpx.RemoteProtocolError, PayletterConnectionError),
    ],
)
async def test_money_calls_never_retry_once_the_request_may_have_left(
    make_harness: MakeHarness,
    call: Call,
    ok_body: dict[str, object],
    failure: type[httpx.TransportError],
    error_cls: type[PayletterTransportError],
) -> None:
    h = make_harness(failure, json_response(200, ok_body))
    with pytest.raises(error_cls) as caught:
        await call(h.client)
    assert h.fake.attempts == 1
    assert caught.value.may_have_reached_payletter


@pytest.mark.parametrize(("call", "ok_body"), MONEY_CALLS, ids=ids(MONEY_CALLS))
async def test_money_calls_never_retry_a_5xx(
    make_harness: MakeHarness, call: Call, ok_body: dict[str, object]
) -> None:
    h = make_harness(
        json_response(500, {"code": 999, "message": "Internal server error"}),
        json_response(200, ok_body),
    )
    with pytest.raises(PayletterServerError):
        await call(h.client)
    assert h.fake.attempts == 1


@pytest.mark.parametrize(("call", "ok_body"), MONEY_CALLS, ids=ids(MONEY_CALLS))
async def test_money_calls_resend_when_the_connection_was_never_made(
    make_harness: MakeHarness, call: Call, ok_body: dict[str, object]
) -> None:
    h = make_harness(httpx.ConnectError, httpx.ConnectTimeout, json_response(200, ok_body))
    assert await call(h.client) is not None
    assert h.fake.attempts == 3


@pytest.mark.parametrize(("call", "ok_body"), ALL_CALLS, ids=ids(ALL_CALLS))
async def test_connect_errors_give_up_after_max_retries_and_say_nothing_was_sent(
    make_harness: MakeHarness, call: Call, ok_body: dict[str, object]
) -> None:
    h = make_harness(httpx.ConnectError, max_retries=2)
    with pytest.raises(PayletterConnectionError) as caught:
        await call(h.client)
    assert h.fake.attempts == 3
    assert not caught.value.may_have_reached_payletter


async def test_connect_timeout_is_a_timeout_that_never_reached_payletter(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(httpx.ConnectTimeout, max_retries=0)
    with pytest.raises(PayletterTimeout) as caught:
        await cancel(h.client)
    assert not caught.value.may_have_reached_payletter
    assert caught.value.endpoint == "v1.0/payments/cancel"


async def test_backoff_grows_exponentially_and_is_capped(make_harness: MakeHarness) -> None:
    h = make_harness(httpx.ReadTimeout, max_retries=6, backoff_seconds=0.5)
    with pytest.raises(PayletterTimeout):
        await receipt_info(h.client)
    assert h.sleeps == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


# --- the same over real loopback sockets ----------------------------------------------------


async def test_a_silent_loopback_server_times_out_a_cancel_exactly_once() -> None:
    connections = 0

    async def accept_and_stay_silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        while await reader.read(65536):  # swallow the request, never answer
            pass
        writer.close()

    server = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PayletterClient(
        base_url=f"http://127.0.0.1:{port}", merchants=MERCHANTS, timeout=0.2, sleep=_no_sleep
    )
    try:
        with pytest.raises(PayletterTimeout) as caught:
            await cancel(client)
        assert caught.value.may_have_reached_payletter
        assert connections == 1
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_a_refused_loopback_connection_is_resent_and_reported_as_never_sent() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    client = PayletterClient(
        base_url=f"http://127.0.0.1:{port}", merchants=MERCHANTS, timeout=1.0, sleep=record
    )
    try:
        with pytest.raises(PayletterConnectionError) as caught:
            await cancel(client)
    finally:
        await client.aclose()
    assert not caught.value.may_have_reached_payletter
    assert len(sleeps) == 2  # max_retries=2: safe because nothing had left


async def _no_sleep(seconds: float) -> None:
    return None


# --- the metrics hook -------------------------------------------------------------------------


async def test_on_response_hook_sees_every_attempt_with_status_and_seconds(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(httpx.ConnectError, json_response(200, STATUS_RESULT))
    await payment_status(h.client)
    assert [(endpoint, status) for endpoint, status, _ in h.observed] == [
        ("v1.0/payments/status", 0),
        ("v1.0/payments/status", 200),
    ]
    assert all(seconds >= 0 for _, _, seconds in h.observed)


async def test_on_response_hook_uses_the_path_template_not_the_tid(
    make_harness: MakeHarness,
) -> None:
    h = make_harness(json_response(200, RECEIPT_RESULT))
    await receipt_info(h.client)
    assert h.observed[0][0] == "v1.0/receipt/info/{tid}"


async def test_a_failing_on_response_hook_does_not_fail_the_call(make_harness: MakeHarness) -> None:
    def broken(endpoint: str, status: int, seconds: float) -> None:
        raise RuntimeError("metrics backend down")

    h = make_harness(json_response(200, CANCEL_RESULT), on_response=broken)
    result = await cancel(h.client)
    assert result is not None
