"""payments/request and payments/autopay field rules, one per test, with their 406 codes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.helpers import Sim, payment_body


async def post_request(sim: Sim, **overrides: Any) -> tuple[int, dict[str, Any]]:
    response = await sim.call("POST", "v1.0/payments/request", json=payment_body(**overrides))
    return response.status_code, response.json()


@pytest.mark.parametrize(
    "field",
    ["pgcode", "client_id", "user_id", "amount", "product_name", "return_url", "callback_url"],
)
async def test_missing_required_field_is_406_code_2001(sim: Sim, field: str) -> None:
    body = payment_body()
    del body[field]
    response = await sim.call("POST", "v1.0/payments/request", json=body)
    assert response.status_code == 406
    assert response.json()["code"] == 2001
    assert field in response.json()["message"]


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("client_id", 20), ("user_id", 50), ("user_name", 20), ("order_no", 40),
        ("service_name", 20), ("product_name", 120), ("custom_parameter", 1024),
    ],
)
async def test_field_longer_than_vendor_size_is_406_code_2002(
    sim: Sim, field: str, limit: int
) -> None:
    # At the limit passes validation (client_id then fails auth: another merchant -> 403).
    ok_status, _ = await post_request(sim, **{field: "가" * limit})
    assert ok_status in (200, 403)
    status, body = await post_request(sim, **{field: "가" * (limit + 1)})
    assert (status, body["code"]) == (406, 2002)
    assert field in body["message"]


@pytest.mark.parametrize("field", ["return_url", "callback_url", "cancel_url"])
async def test_url_longer_than_256_is_406_code_2002(sim: Sim, field: str) -> None:
    url = "http://shop.test/" + "a" * 240
    assert (await post_request(sim, **{field: url[:256]}))[0] == 200
    status, body = await post_request(sim, **{field: url + "bbbbbbbbbbbbbbbbbbbb"})
    assert (status, body["code"]) == (406, 2002)


@pytest.mark.parametrize("bad", ["a<b", "a>b", "line\nbreak", "cr\rhere", "tab\tx", "nul\x00"])
async def test_product_name_with_angle_brackets_or_control_chars_is_406_code_2003(
    sim: Sim, bad: str
) -> None:
    status, body = await post_request(sim, product_name=bad)
    assert (status, body["code"]) == (406, 2003)


@pytest.mark.parametrize(
    ("pgcode", "minimum"),
    [("creditcard", 100), ("banktransfer", 1000), ("virtualaccount", 500), ("toss", 1),
     ("checkpay", 1000), ("mobile", 10), ("teencash", 10)],
)
async def test_amount_below_the_methods_minimum_is_406_code_2004(
    sim: Sim, pgcode: str, minimum: int
) -> None:
    assert (await post_request(sim, pgcode=pgcode, amount=minimum))[0] == 200
    if minimum > 1:
        status, body = await post_request(sim, pgcode=pgcode, amount=minimum - 1)
        assert (status, body["code"]) == (406, 2004)


@pytest.mark.parametrize("pgcode", ["ssgpay", "samsungpay"])
async def test_service_name_is_required_for_ssgpay_and_samsungpay(sim: Sim, pgcode: str) -> None:
    status, body = await post_request(sim, pgcode=pgcode, service_name=None)
    assert (status, body["code"]) == (406, 2005)
    assert (await post_request(sim, pgcode=pgcode, service_name="상점"))[0] == 200
    assert (await post_request(sim, pgcode="kakaopay", service_name=None))[0] == 200


async def test_unknown_pgcode_is_406_code_2006(sim: Sim) -> None:
    status, body = await post_request(sim, pgcode="bitcoin")
    assert (status, body["code"]) == (406, 2006)


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": 1000.5}, {"amount": "1000"}, {"amount": True}, {"amount": -5},
        {"taxfree_amount": 2000}, {"autopay_flag": "X"}, {"return_url": "/relative"},
        {"callback_url": "ftp://x.test/cb"}, {"expire_date": "20241301"},
        {"expire_time": "2460"}, {"user_id": 123},
    ],
)
async def test_malformed_values_are_406_code_2007(sim: Sim, overrides: dict[str, Any]) -> None:
    status, body = await post_request(sim, **overrides)
    assert (status, body["code"]) == (406, 2007), body


async def test_voucher_may_omit_amount(sim: Sim) -> None:
    assert (await post_request(sim, pgcode="voucher", amount=None))[0] == 200
    status, body = await post_request(sim, pgcode="creditcard", amount=None)
    assert (status, body["code"]) == (406, 2001)


async def test_voucher_without_amount_is_approved_with_the_vouchers_amount(sim: Sim) -> None:
    token = (await sim.request_payment(pgcode="voucher", amount=None))["token"]
    fields = (await sim.approve(token, amount=5000))["return_fields"]
    assert fields["amount"] == "5000"
    assert fields["tax_amount"] == "455"  # 5000/11 = 454.5 -> 455


async def test_autopay_flag_on_a_method_without_autopay_is_406_code_4003(sim: Sim) -> None:
    status, body = await post_request(sim, pgcode="kakaopay", autopay_flag="Y")
    assert (status, body["code"]) == (406, 4003)


async def test_disposable_cup_deposit_only_on_the_listed_methods(sim: Sim) -> None:
    assert (await post_request(sim, pgcode="kakaopay", disposable_cup_deposit=300))[0] == 200
    status, body = await post_request(sim, pgcode="payco", disposable_cup_deposit=300)
    assert (status, body["code"]) == (406, 2007)


@pytest.mark.parametrize(
    ("amount", "taxfree", "expected_tax"),
    [(1000, 100, 82), (1000, 0, 91), (1100, 0, 100), (10, 0, 1), (5, 0, 0), (1000, 1000, 0)],
)
async def test_tax_amount_defaults_to_taxable_over_11_rounded_half_up(
    sim: Sim, amount: int, taxfree: int, expected_tax: int
) -> None:
    token, fields = await sim.paid(
        pgcode="toss", amount=amount, taxfree_amount=taxfree, tax_amount=None
    )
    assert fields["tax_amount"] == str(expected_tax)
    assert (await sim.payment(token))["tax_amount"] == expected_tax


async def test_explicit_tax_amount_is_kept(sim: Sim) -> None:
    _, fields = await sim.paid(amount=1000, taxfree_amount=100, tax_amount=20)
    assert (fields["taxfree_amount"], fields["tax_amount"]) == ("100", "20")


async def test_amount_zero_is_refused_for_a_normal_merchant(sim: Sim) -> None:
    status, body = await post_request(sim, amount=0, autopay_flag="Y")
    assert (status, body["code"]) == (406, 2004)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("billkey", None, 2001), ("ip_addr", None, 2001), ("billkey", "b" * 41, 2002),
        ("ip_addr", "1" * 31, 2002), ("order_no", "o" * 51, 2002), ("pgcode", "toss", 4003),
    ],
)
async def test_autopay_request_field_rules(sim: Sim, field: str, value: Any, code: int) -> None:
    body = {
        "pgcode": "creditcard", "client_id": "pay_test", "user_id": "buyer01",
        "amount": 1000, "product_name": "월 구독", "billkey": "tbpay_test0000",
        "ip_addr": "127.0.0.1", "order_no": "o" * 50,
    }
    if value is None:
        del body[field]
    else:
        body[field] = value
    response = await sim.call("POST", "v1.0/payments/autopay", json=body)
    assert (response.status_code, response.json()["code"]) == (406, code), response.json()


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("v1.0/payments/cancel", {"client_id": "pay_test", "user_id": "u", "tid": "t"}, 2001),
        ("v1.0/payments/cancel", {"client_id": "pay_test", "user_id": "u", "tid": "t" * 41,
                                  "ip_addr": "1"}, 2002),
        ("v1.0/payments/cancel/partial", {"client_id": "pay_test", "user_id": "u", "tid": "t",
                                          "ip_addr": "1", "amount": 10}, 2001),
        ("v1.0/payments/status", {"client_id": "pay_test"}, 2001),
        ("v1.0/payments/status", {"client_id": "pay_test", "order_no": "missing"}, 2009),
        ("v1.0/payments/cancel", {"client_id": "pay_test", "user_id": "u", "tid": "nope",
                                  "ip_addr": "1"}, 2010),
    ],
)
async def test_other_calls_validate_their_fields(
    sim: Sim, path: str, body: dict[str, Any], code: int
) -> None:
    response = await sim.call("POST", path, json=body)
    assert (response.status_code, response.json()["code"]) == (406, code), response.json()
