"""payments/request, the HTML window and its three buttons, the return form, status codes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.helpers import (
    PAY_TEST_PAYMENT_KEY,
    SHOP,
    Sim,
    expected_payhash,
    parse_forms,
)


async def status_code(sim: Sim, order_no: str = "order-1") -> int:
    response = await sim.call(
        "POST", "v1.0/payments/status", json={"client_id": "pay_test", "order_no": order_no}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["status_code"])


async def test_request_answers_a_big_integer_token_and_window_urls_on_public_url(
    sim: Sim,
) -> None:
    answer = await sim.request_payment()
    assert set(answer) == {"token", "online_url", "mobile_url"}
    assert isinstance(answer["token"], int) and answer["token"] > 2**53  # beyond JS-safe ints
    token = answer["token"]
    assert answer["online_url"] == f"http://sim.test/pay/{token}?location=online"
    assert answer["mobile_url"] == f"http://sim.test/pay/{token}?location=mobile"


async def test_token_is_a_json_number_in_the_raw_body(sim: Sim) -> None:
    response = await sim.call("POST", "v1.0/payments/request", json={
        "pgcode": "creditcard", "client_id": "pay_test", "user_id": "u", "amount": 100,
        "product_name": "p", "return_url": f"{SHOP}/r", "callback_url": f"{SHOP}/c",
    })
    assert response.text.startswith('{"token":') and '"token":"' not in response.text


async def test_window_page_shows_the_order_and_three_buttons_and_moves_status_to_2(
    sim: Sim,
) -> None:
    answer = await sim.request_payment(product_name="커피 & \"머핀\"")
    assert await status_code(sim) == 1
    page = await sim.client.get(answer["mobile_url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for needle in ('id="approve"', 'id="decline"', 'id="cancel"', "order-1", "1,000원",
                   "pay_test", "신용카드", "커피 &amp; &quot;머핀&quot;"):
        assert needle in html
    assert await status_code(sim) == 2
    assert (await sim.payment(answer["token"]))["location"] == "mobile"


async def test_window_escapes_merchant_supplied_text(sim: Sim) -> None:
    answer = await sim.request_payment(
        custom_parameter='"><script>alert(1)</script>', order_no="o&<x>"
    )
    html = (await sim.client.get(answer["online_url"])).text
    assert "<script>alert" not in html and "o&amp;&lt;x&gt;" in html
    approved = await sim.client.post(f"pay/{answer['token']}/approve")
    assert "<script>alert" not in approved.text
    form = parse_forms(approved.text)["return-form"]
    assert form.fields["custom_parameter"] == '"><script>alert(1)</script>'


async def test_approve_button_serves_an_auto_submitting_post_form_to_return_url(
    sim: Sim,
) -> None:
    answer = await sim.request_payment()
    await sim.client.get(answer["online_url"])
    window = parse_forms((await sim.client.get(answer["online_url"])).text)
    approve_form = window["approve"]
    assert approve_form.method == "post"
    response = await sim.client.post(approve_form.action)
    assert response.status_code == 200
    html = response.text
    form = parse_forms(html)["return-form"]
    # The merchant's query string survives exactly.
    assert form.action == f"{SHOP}/payletter/return?shop=1&lang=ko"
    assert form.method == "post"
    assert 'enctype="application/x-www-form-urlencoded"' in html
    assert 'document.getElementById("return-form").submit()' in html
    assert 'id="return-submit"' in html
    assert await status_code(sim) == 4 or await status_code(sim) == 5


async def test_success_return_fields_are_the_vendors_with_a_verifiable_payhash(
    sim: Sim,
) -> None:
    token, fields = await sim.paid(amount=1000, taxfree_amount=100, tax_amount=20)
    assert set(fields) == {
        "code", "message", "user_id", "user_name", "order_no", "service_name", "product_name",
        "custom_parameter", "tid", "cid", "amount", "taxfree_amount", "tax_amount", "pay_info",
        "pgcode", "billkey", "domestic_flag", "transaction_date", "install_month", "card_info",
        "payhash", "disposable_cup_deposit",
    }
    assert fields["code"] == "0"
    assert (fields["user_id"], fields["order_no"], fields["amount"]) == (
        "buyer01", "order-1", "1000"
    )
    assert fields["custom_parameter"] == "cp=1&x=y"
    assert fields["pgcode"] == "creditcard"
    assert fields["billkey"] == ""
    assert fields["card_info"] == "457973******1234"
    assert fields["tid"].startswith("tpay_test-") and len(fields["tid"]) <= 40
    assert len(fields["transaction_date"]) == 19 and fields["transaction_date"][4] == "-"
    assert fields["payhash"] == expected_payhash(
        "buyer01", 1000, fields["tid"], PAY_TEST_PAYMENT_KEY
    )
    assert (await sim.payment(token))["return_fields"] == fields


async def test_card_info_only_for_creditcard_and_payco(sim: Sim) -> None:
    for pgcode, masked in (("payco", True), ("kakaopay", False), ("mobile", False)):
        _, fields = await sim.paid(pgcode=pgcode)
        assert bool(fields["card_info"]) is masked, pgcode


@pytest.mark.parametrize(
    ("pgcode", "choice", "reported"),
    [("naverpay", None, "navercard"), ("naverpay", "naverpoint", "naverpoint"),
     ("smilepay", None, "smilecard"), ("smilepay", "smilecash", "smilecash")],
)
async def test_naverpay_and_smilepay_report_the_buyers_actual_pgcode(
    sim: Sim, pgcode: str, choice: str | None, reported: str
) -> None:
    token = (await sim.request_payment(pgcode=pgcode))["token"]
    body: dict[str, Any] = {"result_pgcode": choice} if choice else {}
    fields = (await sim.approve(token, **body))["return_fields"]
    assert fields["pgcode"] == reported
    callback = (await sim.wait_attempts(1))[0]
    assert callback["outcome"] == "acknowledged"
    assert sim.receiver is not None and sim.receiver.received[0]["pgcode"] == reported


async def test_window_approve_form_lets_the_buyer_pick_naverpoint(sim: Sim) -> None:
    answer = await sim.request_payment(pgcode="naverpay")
    form = parse_forms((await sim.client.get(answer["online_url"])).text)["approve"]
    assert 'id="result-pgcode"' in (await sim.client.get(answer["online_url"])).text
    html = (await sim.client.post(form.action, data={"result_pgcode": "naverpoint"})).text
    assert parse_forms(html)["return-form"].fields["pgcode"] == "naverpoint"


async def test_status_goes_1_created_2_entered_4_approved_5_after_acknowledged_callback(
    make_sim: Any,
) -> None:
    from tests.simulator.helpers import Receiver

    sim: Sim = await make_sim(Receiver(script=[(200, {"code": 1})]), callback_max_attempts=1)
    answer = await sim.request_payment()
    assert await status_code(sim) == 1
    await sim.client.get(answer["online_url"])
    assert await status_code(sim) == 2
    await sim.approve(answer["token"])
    await sim.wait_attempts(1)
    assert await status_code(sim) == 4  # the receiver said code 1: not done
    sent = await sim.client.post(f"_sim/callbacks/{answer['token']}/send")
    assert sent.json()["first_attempts"][0]["outcome"] == "rejected"
    sim.receiver.script = [(200, {"code": 0})]  # type: ignore[union-attr]
    await sim.client.post(f"_sim/callbacks/{answer['token']}/send")
    assert await status_code(sim) == 5


async def test_status_answer_has_the_vendors_fields(sim: Sim) -> None:
    token, fields = await sim.paid()
    response = await sim.call(
        "POST", "v1.0/payments/status", json={"client_id": "pay_test", "order_no": "order-1"}
    )
    assert response.json() == {
        "code": 0, "message": "ok", "client_id": "pay_test", "order_no": "order-1",
        "token": str(token), "tid": fields["tid"], "status_code": response.json()["status_code"],
    }


async def test_status_of_a_retried_order_no_is_the_latest_payment(sim: Sim) -> None:
    await sim.request_payment()
    second = await sim.request_payment()
    response = await sim.call(
        "POST", "v1.0/payments/status", json={"client_id": "pay_test", "order_no": "order-1"}
    )
    assert response.json()["token"] == str(second["token"])


async def test_decline_posts_failure_fields_to_return_url_and_sends_no_callback(
    sim: Sim,
) -> None:
    answer = await sim.request_payment()
    html = (await sim.client.post(f"pay/{answer['token']}/decline")).text
    form = parse_forms(html)["return-form"]
    assert form.action == f"{SHOP}/payletter/return?shop=1&lang=ko"
    assert set(form.fields) == {
        "code", "message", "user_id", "order_no", "service_name", "product_name",
        "custom_parameter",
    }
    assert form.fields["code"] not in ("", "0")
    await sim.request_payment(order_no="other")  # give any stray callback a moment
    assert await sim.attempts() == []


async def test_control_decline_answers_the_return_fields_with_a_chosen_code(sim: Sim) -> None:
    token = (await sim.request_payment())["token"]
    response = await sim.client.post(
        f"_sim/payments/{token}/decline", json={"code": "E204", "message": "한도 초과"}
    )
    body = response.json()
    assert body["return_url"] == f"{SHOP}/payletter/return?shop=1&lang=ko"
    assert (body["return_fields"]["code"], body["return_fields"]["message"]) == (
        "E204", "한도 초과"
    )


async def test_cancel_button_redirects_303_to_cancel_url_with_its_query_intact(
    sim: Sim,
) -> None:
    token = (await sim.request_payment())["token"]
    response = await sim.client.post(f"pay/{token}/cancel")
    assert response.status_code == 303
    assert response.headers["location"] == f"{SHOP}/payletter/cancel?from=window"
    assert (await sim.payment(token))["phase"] == "abandoned"


@pytest.mark.parametrize("pgcode", ["naverpay", "samsungpay"])
async def test_naverpay_and_samsungpay_never_go_to_cancel_url(sim: Sim, pgcode: str) -> None:
    token = (await sim.request_payment(pgcode=pgcode))["token"]
    response = await sim.client.post(f"pay/{token}/cancel")
    assert response.status_code == 200 and 'id="closed"' in response.text
    other = (await sim.request_payment(pgcode=pgcode, order_no="o2"))["token"]
    assert (await sim.client.post(f"_sim/payments/{other}/cancel")).json() == {
        "cancel_url": None
    }


async def test_control_cancel_answers_the_cancel_url(sim: Sim) -> None:
    token = (await sim.request_payment())["token"]
    response = await sim.client.post(f"_sim/payments/{token}/cancel")
    assert response.json() == {"cancel_url": f"{SHOP}/payletter/cancel?from=window"}


async def test_approving_twice_is_a_conflict_and_the_window_says_so(sim: Sim) -> None:
    answer = await sim.request_payment()
    await sim.approve(answer["token"])
    again = await sim.client.post(f"_sim/payments/{answer['token']}/approve")
    assert again.status_code == 409
    assert (await sim.client.post(f"pay/{answer['token']}/approve")).status_code == 409
    page = await sim.client.get(answer["online_url"])
    assert 'id="approve"' not in page.text


async def test_a_buyer_may_pay_after_a_decline(sim: Sim) -> None:
    token = (await sim.request_payment())["token"]
    await sim.client.post(f"_sim/payments/{token}/decline")
    fields = (await sim.approve(token))["return_fields"]
    assert fields["code"] == "0"


async def test_unknown_window_token_is_404(sim: Sim) -> None:
    assert (await sim.client.get("pay/123?location=online")).status_code == 404
    assert (await sim.client.post("_sim/payments/123/approve")).status_code == 404


async def test_payhash_fault_makes_return_and_callback_payhash_wrong(sim: Sim) -> None:
    await sim.faults(bad_payhash=True)
    _, fields = await sim.paid()
    good = expected_payhash("buyer01", 1000, fields["tid"], PAY_TEST_PAYMENT_KEY)
    assert fields["payhash"] != good and len(fields["payhash"]) == 64
    await sim.wait_attempts(1)
    assert sim.receiver is not None and sim.receiver.received[0]["payhash"] != good


async def test_cash_receipt_fields_when_receipt_flag_on_a_cash_method(sim: Sim) -> None:
    _, fields = await sim.paid(pgcode="banktransfer", receipt_flag="Y")
    assert fields["cash_receipt_code"] == "0" and fields["cash_receipt_deal_no"] == "order-1"
    await sim.wait_attempts(1)
    assert sim.receiver is not None
    assert sim.receiver.received[0]["cash_receipt"]["code"] == "0"
