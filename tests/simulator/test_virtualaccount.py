"""Virtual accounts: issuance in the window (no payhash, no callback), then the deposit."""

from __future__ import annotations

from tests.simulator.helpers import PAY_TEST_PAYMENT_KEY, Sim, expected_payhash, parse_forms

ACCOUNT_FIELDS = {
    "account_no", "account_name", "account_holder", "bank_code", "bank_name", "issue_tid",
    "expire_date", "expire_time", "tid",
}


async def test_issuing_an_account_returns_account_fields_without_payhash_or_callback(
    sim: Sim,
) -> None:
    token = (await sim.request_payment(pgcode="virtualaccount", amount=50000))["token"]
    fields = (await sim.approve(token))["return_fields"]
    assert set(fields) >= ACCOUNT_FIELDS
    assert "payhash" not in fields
    assert fields["code"] == "0" and fields["amount"] == "50000"
    assert len(fields["expire_date"]) == 8 and len(fields["expire_time"]) == 4
    await sim.request_payment(order_no="other")
    assert await sim.attempts() == []
    payment = await sim.payment(token)
    assert payment["status_code"] == 3 and payment["phase"] == "account_issued"


async def test_window_approve_button_issues_the_account(sim: Sim) -> None:
    answer = await sim.request_payment(pgcode="virtualaccount", amount=50000)
    page = (await sim.client.get(answer["online_url"])).text
    assert 'id="approve"' in page and "계좌 발급" in page
    html = (await sim.client.post(parse_forms(page)["approve"].action)).text
    assert "account_no" in parse_forms(html)["return-form"].fields


async def test_requested_expiry_is_used(sim: Sim) -> None:
    token = (await sim.request_payment(
        pgcode="virtualaccount", expire_date="20991231", expire_time="1130"
    ))["token"]
    fields = (await sim.approve(token))["return_fields"]
    assert (fields["expire_date"], fields["expire_time"]) == ("20991231", "1130")


async def test_deposit_sends_the_callback_with_payhash_and_completes_the_status(
    sim: Sim,
) -> None:
    token = (await sim.request_payment(pgcode="virtualaccount", amount=50000))["token"]
    tid = (await sim.approve(token))["return_fields"]["tid"]
    response = await sim.client.post(f"_sim/virtualaccount/{tid}/deposit")
    assert response.status_code == 200
    assert response.json()["status_code"] == 5
    [attempt] = await sim.wait_attempts(1)
    assert attempt["outcome"] == "acknowledged"
    assert sim.receiver is not None
    payload = sim.receiver.received[0]
    assert payload["pgcode"] == "virtualaccount" and payload["tid"] == tid
    assert payload["payhash"] == expected_payhash("buyer01", 50000, tid, PAY_TEST_PAYMENT_KEY)


async def test_depositing_twice_or_after_expiry_is_refused(sim: Sim) -> None:
    await sim.set_clock("2024-03-01T10:00:00+09:00")
    token = (await sim.request_payment(
        pgcode="virtualaccount", expire_date="20240302", expire_time="1200"
    ))["token"]
    tid = (await sim.approve(token))["return_fields"]["tid"]
    await sim.set_clock("2024-03-02T12:01:00+09:00")
    assert (await sim.client.post(f"_sim/virtualaccount/{tid}/deposit")).status_code == 409
    await sim.set_clock("2024-03-02T11:59:00+09:00")
    assert (await sim.client.post(f"_sim/virtualaccount/{tid}/deposit")).status_code == 200
    assert (await sim.client.post(f"_sim/virtualaccount/{tid}/deposit")).status_code == 409
    assert (await sim.client.post("_sim/virtualaccount/nope/deposit")).status_code == 404


async def test_virtualaccount_can_never_be_cancelled(sim: Sim) -> None:
    token = (await sim.request_payment(pgcode="virtualaccount", amount=50000))["token"]
    tid = (await sim.approve(token))["return_fields"]["tid"]
    await sim.client.post(f"_sim/virtualaccount/{tid}/deposit")
    response = await sim.call("POST", "v1.0/payments/cancel", json={
        "client_id": "pay_test", "user_id": "buyer01", "tid": tid, "ip_addr": "127.0.0.1",
    })
    assert (response.status_code, response.json()["code"]) == (406, 3001)
