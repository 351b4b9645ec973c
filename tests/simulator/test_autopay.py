"""Billkeys from an autopay_flag=Y first payment, payments/autopay, the mobile monthly rule."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simulator.helpers import AUTO_TEST_PAYMENT_KEY, Sim


async def first_payment(sim: Sim, when: str, **overrides: Any) -> dict[str, str]:
    await sim.set_clock(when)
    body = {"client_id": "auto_test", "autopay_flag": "Y", "pgcode": "creditcard"}
    _, fields = await sim.paid(**{**body, **overrides})
    return fields


async def charge(sim: Sim, billkey: str, at: str | None = None, **overrides: Any) -> httpx.Response:
    if at:
        await sim.set_clock(at)
    body = {
        "pgcode": "creditcard", "client_id": "auto_test", "user_id": "buyer01",
        "user_name": "테스터", "order_no": "sub-" + "x" * 46, "amount": 1000,
        "product_name": "월 구독", "billkey": billkey, "ip_addr": "127.0.0.1",
    }
    return await sim.call(
        "POST", "v1.0/payments/autopay", key=AUTO_TEST_PAYMENT_KEY, json={**body, **overrides}
    )


async def test_autopay_flag_y_issues_a_billkey_in_return_and_callback(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    billkey = fields["billkey"]
    assert billkey.startswith("tbauto_test") and len(billkey) <= 40
    await sim.wait_attempts(1)
    assert sim.receiver is not None and sim.receiver.received[0]["billkey"] == billkey


async def test_autopay_charges_the_billkey_with_the_vendors_answer(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    response = await charge(sim, fields["billkey"], at="2024-01-20T09:00:00+09:00")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"tid", "cid", "amount", "billkey", "transaction_date"}
    assert (body["amount"], body["billkey"]) == (1000, fields["billkey"])
    assert body["transaction_date"] == "2024-01-20 09:00:00"
    assert body["tid"] != fields["tid"]


async def test_autopay_sends_no_callback_and_is_done_at_once(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    await sim.wait_attempts(1)
    response = await charge(sim, fields["billkey"], order_no="sub-2")
    assert response.status_code == 200
    status = await sim.call(
        "POST", "v1.0/payments/status", key=AUTO_TEST_PAYMENT_KEY,
        json={"client_id": "auto_test", "order_no": "sub-2"},
    )
    assert status.json()["status_code"] == 5 and status.json()["tid"] == response.json()["tid"]
    assert len(await sim.attempts()) == 1


async def test_unknown_or_revoked_billkey_is_406_code_4001(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    unknown = await charge(sim, "tbauto_test000")
    assert (unknown.status_code, unknown.json()["code"]) == (406, 4001)
    revoked = await sim.client.post(f"_sim/billkeys/{fields['billkey']}/revoke")
    assert revoked.json()["revoked"] is True
    refused = await charge(sim, fields["billkey"])
    assert (refused.status_code, refused.json()["code"]) == (406, 4001)
    assert (await sim.client.post("_sim/billkeys/nope/revoke")).status_code == 404


async def test_billkey_is_bound_to_its_method_and_user(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    other_method = await charge(sim, fields["billkey"], pgcode="payco")
    assert other_method.json()["code"] == 4001
    other_user = await charge(sim, fields["billkey"], user_id="someone")
    assert other_user.json()["code"] == 4001


async def test_billkey_only_registration_with_amount_zero_on_auto_test1(sim: Sim) -> None:
    token, fields = await sim.paid(client_id="auto_test1", amount=0, autopay_flag="Y")
    assert fields["billkey"] and fields["amount"] == "0"
    billkeys = (await sim.client.get("_sim/billkeys")).json()
    assert billkeys[0]["amount"] == 0 and billkeys[0]["charges"] == []
    assert (await sim.payment(token))["remaining_amount"] == 0


async def test_mobile_autopay_same_day_next_month_with_the_same_amount_is_approved(
    sim: Sim,
) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00", pgcode="mobile", amount=9900)
    ok = await charge(sim, fields["billkey"], at="2024-02-15T09:00:00+09:00",
                      pgcode="mobile", amount=9900)
    assert ok.status_code == 200, ok.json()
    # March needs February's payment, which now exists.
    march = await charge(sim, fields["billkey"], at="2024-03-15T09:00:00+09:00",
                         pgcode="mobile", amount=9900)
    assert march.status_code == 200, march.json()


async def test_mobile_autopay_refuses_other_amount_day_too_early_or_a_skipped_month(
    sim: Sim,
) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00", pgcode="mobile", amount=9900)
    billkey = fields["billkey"]
    cases = [
        ("2024-02-15T09:00:00+09:00", 5000),  # another amount
        ("2024-02-16T09:00:00+09:00", 9900),  # another day of the month
        ("2024-01-30T09:00:00+09:00", 9900),  # within the first month
        ("2024-03-15T09:00:00+09:00", 9900),  # February had no payment
    ]
    for when, amount in cases:
        response = await charge(sim, billkey, at=when, pgcode="mobile", amount=amount)
        assert (response.status_code, response.json()["code"]) == (406, 4002), when


async def test_card_autopay_has_no_monthly_rule(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    for when in ("2024-01-15T11:00:00+09:00", "2024-04-03T11:00:00+09:00"):
        assert (await charge(sim, fields["billkey"], at=when, amount=777)).status_code == 200


async def test_an_autopay_charge_can_be_cancelled(sim: Sim) -> None:
    fields = await first_payment(sim, "2024-01-15T10:00:00+09:00")
    tid = (await charge(sim, fields["billkey"])).json()["tid"]
    response = await sim.call("POST", "v1.0/payments/cancel", key=AUTO_TEST_PAYMENT_KEY, json={
        "client_id": "auto_test", "user_id": "buyer01", "tid": tid, "ip_addr": "127.0.0.1",
    })
    assert response.status_code == 200 and response.json()["amount"] == 1000
