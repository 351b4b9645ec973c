"""The /_sim/ control API: health, reset, payments, clock, faults."""

from __future__ import annotations

from tests.simulator.helpers import AUTO_TEST_PAYMENT_KEY, Sim


async def test_health(sim: Sim) -> None:
    assert (await sim.client.get("_sim/health")).json() == {"ok": True}


async def test_payments_listing_shows_the_stored_payment(sim: Sim) -> None:
    token, fields = await sim.paid(autopay_flag="Y", cancel_url=None)
    [listed] = (await sim.client.get("_sim/payments")).json()
    assert listed == await sim.payment(token)
    for key in ("status_code", "tid", "amount", "taxfree_amount", "tax_amount", "order_no",
                "client_id", "pgcode", "return_url", "callback_url", "cancel_url", "billkey",
                "cancels"):
        assert key in listed
    assert listed["billkey"] == fields["billkey"] and listed["cancel_url"] == ""
    assert (await sim.client.get("_sim/payments/1")).status_code == 404


async def test_reset_clears_payments_callbacks_faults_and_clock(sim: Sim) -> None:
    await sim.set_clock("2020-01-01T00:00:00+09:00")
    await sim.faults(bad_payhash=True)
    await sim.paid()
    await sim.wait_attempts(1)
    assert (await sim.client.post("_sim/reset")).json() == {"ok": True}
    assert (await sim.client.get("_sim/payments")).json() == []
    assert await sim.attempts() == []
    assert (await sim.client.get("_sim/faults")).json()["bad_payhash"] is False
    assert (await sim.client.get("_sim/clock")).json()["real"] is True


async def test_clock_can_be_pinned_read_and_released(sim: Sim) -> None:
    answer = (await sim.client.post(
        "_sim/clock", json={"now": "2024-02-29T23:59:59+09:00"}
    )).json()
    assert answer["kst"] == "2024-02-29 23:59:59" and answer["real"] is False
    assert (await sim.client.get("_sim/clock")).json()["now"] == "2024-02-29T14:59:59+00:00"
    _, fields = await sim.paid()
    assert fields["transaction_date"] == "2024-02-29 23:59:59"
    await sim.set_clock(None)
    assert (await sim.client.get("_sim/clock")).json()["real"] is True


async def test_clock_can_tick_from_a_chosen_instant(sim: Sim) -> None:
    await sim.client.post("_sim/clock", json={"now": "2024-01-01T00:00:00+09:00",
                                              "ticking": True})
    clock = (await sim.client.get("_sim/clock")).json()
    assert clock["ticking"] is True and clock["kst"].startswith("2024-01-01 00:00")


async def test_clock_refuses_a_time_without_offset(sim: Sim) -> None:
    response = await sim.client.post("_sim/clock", json={"now": "2024-01-01T00:00:00"})
    assert response.status_code == 422


async def test_faults_merge_by_field_and_by_endpoint_then_clear(sim: Sim) -> None:
    await sim.faults(drop_callbacks_for_orders=["a"], api_delay={"payments/request": 1})
    merged = await sim.faults(
        bad_payhash=True, api_delay={"payments/status": 2},
        api_errors={"payments/cancel": {"status": 503}},
    )
    assert merged["drop_callbacks_for_orders"] == ["a"] and merged["bad_payhash"] is True
    assert merged["api_delay"] == {"payments/request": 1, "payments/status": 2}
    assert merged["api_errors"]["payments/cancel"]["status"] == 503
    removed = await sim.faults(api_delay={"payments/request": None})
    assert removed["api_delay"] == {"payments/status": 2}
    cleared = (await sim.client.delete("_sim/faults")).json()
    assert cleared["api_delay"] == {} and cleared["drop_callbacks_for_orders"] == []


async def test_faults_reject_unknown_switches(sim: Sim) -> None:
    assert (await sim.client.post("_sim/faults", json={"nope": 1})).status_code == 422
    assert (await sim.client.post(
        "_sim/faults", json={"duplicate_callbacks": 0}
    )).status_code == 422


async def test_control_approve_of_an_autopay_charge_is_a_conflict(sim: Sim) -> None:
    _, fields = await sim.paid(client_id="auto_test", autopay_flag="Y")
    response = await sim.call("POST", "v1.0/payments/autopay", key=AUTO_TEST_PAYMENT_KEY, json={
        "pgcode": "creditcard", "client_id": "auto_test", "user_id": "buyer01", "amount": 500,
        "product_name": "p", "billkey": fields["billkey"], "ip_addr": "127.0.0.1",
    })
    payments = (await sim.client.get("_sim/payments")).json()
    charge = next(p for p in payments if p["tid"] == response.json()["tid"])
    assert charge["origin"] == "autopay"
    assert (await sim.client.post(f"_sim/payments/{charge['token']}/approve")).status_code == 409
