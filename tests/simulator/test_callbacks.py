"""The callback delivery engine: shape, payhash, redelivery schedule, faults, the log."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.simulator.helpers import (
    PAY_TEST_PAYMENT_KEY,
    MakeSim,
    Receiver,
    Sim,
    expected_payhash,
)

VENDOR_CALLBACK_KEYS = {
    "user_id", "user_name", "amount", "tax_amount", "taxfree_amount", "tid", "cid", "order_no",
    "service_name", "product_name", "custom_parameter", "transaction_date", "pay_info",
    "pgcode", "domestic_flag", "billkey", "card_info", "payhash", "disposable_cup_deposit",
    "cash_receipt",
}


async def test_callback_json_has_the_vendors_keys_types_and_an_independent_payhash(
    sim: Sim,
) -> None:
    _, fields = await sim.paid(pgcode="mobile", amount=1000, taxfree_amount=100, tax_amount=20)
    await sim.wait_attempts(1)
    assert sim.receiver is not None
    payload: dict[str, Any] = sim.receiver.received[0]
    assert set(payload) == VENDOR_CALLBACK_KEYS
    assert payload["amount"] == 1000 and isinstance(payload["amount"], int)
    assert (payload["taxfree_amount"], payload["tax_amount"]) == (100, 20)
    assert payload["disposable_cup_deposit"] == 0
    assert payload["tid"] == fields["tid"] and payload["pgcode"] == "mobile"
    assert payload["payhash"] == expected_payhash(
        "buyer01", 1000, fields["tid"], PAY_TEST_PAYMENT_KEY
    )
    assert set(payload["cash_receipt"]) == {
        "code", "message", "cid", "deal_no", "issue_type", "payer_sid", "type"
    }


async def test_receiver_answering_nonzero_three_times_then_zero_gets_exactly_four_attempts(
    make_sim: MakeSim,
) -> None:
    nonzero = (200, {"code": 1, "message": "db down"})
    receiver = Receiver(script=[nonzero] * 3 + [(200, {"code": 0})])
    sim = await make_sim(receiver, callback_interval=0.05, callback_max_attempts=20)
    token, _ = await sim.paid()
    attempts = await sim.wait_attempts(4)
    await asyncio.sleep(0.15)  # nothing more may come after the acknowledgement
    attempts = await sim.attempts()
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["outcome"] for a in attempts] == ["rejected"] * 3 + ["acknowledged"]
    assert len(receiver.received) == 4
    gaps = [b - a for a, b in zip(receiver.arrival_times, receiver.arrival_times[1:], strict=False)]
    assert all(gap >= 0.045 for gap in gaps), gaps
    assert (await sim.payment(token))["status_code"] == 5


async def test_receiver_that_never_acknowledges_gets_exactly_max_attempts(
    make_sim: MakeSim,
) -> None:
    receiver = Receiver(script=[(200, {"code": 99})])
    sim = await make_sim(receiver, callback_interval=0.01, callback_max_attempts=5)
    token, _ = await sim.paid()
    await sim.wait_attempts(5)
    await asyncio.sleep(0.1)
    attempts = await sim.attempts(token=token)
    assert len(attempts) == 5 and len(receiver.received) == 5
    assert {a["outcome"] for a in attempts} == {"rejected"}
    assert (await sim.payment(token))["status_code"] == 4


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ((200, {"code": 0, "message": ""}), "acknowledged"),
        ((200, {"code": "0"}), "acknowledged"),
        ((201, {"code": 0}), "acknowledged"),
        ((500, {"code": 0}), "rejected"),
        ((302, {"code": 0}), "rejected"),
        ((200, "OK"), "rejected"),
        ((200, {"code": False}), "rejected"),
        ((200, {"code": None}), "rejected"),
        ((200, [0]), "rejected"),
        ((200, {"result": "ok"}), "rejected"),
    ],
)
async def test_only_2xx_json_with_code_zero_counts_as_delivered(
    make_sim: MakeSim, answer: tuple[int, Any], outcome: str
) -> None:
    sim = await make_sim(Receiver(script=[answer]), callback_max_attempts=1)
    await sim.paid()
    [attempt] = await sim.wait_attempts(1)
    assert attempt["outcome"] == outcome
    assert attempt["response_status"] == answer[0]


async def test_attempt_log_records_everything_about_each_try(make_sim: MakeSim) -> None:
    sim = await make_sim(Receiver(script=[(200, "x" * 5000)]), callback_max_attempts=1)
    token, fields = await sim.paid()
    [attempt] = await sim.wait_attempts(1)
    assert attempt["token"] == token and attempt["tid"] == fields["tid"]
    assert attempt["order_no"] == "order-1" and attempt["attempt"] == 1
    assert attempt["url"] == "http://shop.test/payletter/callback"
    assert attempt["sent_at"].endswith("+00:00")
    assert attempt["source_address"] is None
    assert len(attempt["response_body"]) == 1000
    assert {"id", "delivery_id", "error", "elapsed_ms"} <= set(attempt)


async def test_callback_log_filters_by_order_no_and_token(sim: Sim) -> None:
    first, _ = await sim.paid(order_no="A")
    await sim.paid(order_no="B")
    await sim.wait_attempts(2)
    assert [a["order_no"] for a in await sim.attempts(order_no="A")] == ["A"]
    assert [a["token"] for a in await sim.attempts(token=first)] == [first]


async def test_drop_callbacks_for_orders_logs_dropped_and_sends_nothing(sim: Sim) -> None:
    await sim.faults(drop_callbacks_for_orders=["lost"])
    await sim.paid(order_no="lost")
    await sim.paid(order_no="kept")
    await sim.wait_attempts(2)
    outcomes = {a["order_no"]: a["outcome"] for a in await sim.attempts()}
    assert outcomes == {"lost": "dropped", "kept": "acknowledged"}
    assert sim.receiver is not None
    assert [p["order_no"] for p in sim.receiver.received] == ["kept"]


async def test_drop_all_callbacks(sim: Sim) -> None:
    await sim.faults(drop_all_callbacks=True)
    await sim.paid()
    [attempt] = await sim.wait_attempts(1)
    assert attempt["outcome"] == "dropped"
    assert sim.receiver is not None and sim.receiver.received == []


async def test_duplicate_callbacks_fault_sends_concurrent_copies(make_sim: MakeSim) -> None:
    receiver = Receiver(delay=0.1)
    sim = await make_sim(receiver)
    await sim.faults(duplicate_callbacks=3)
    await sim.paid()
    started = time.monotonic()
    attempts = await sim.wait_attempts(3)
    assert time.monotonic() - started < 0.28  # overlapping: one after another takes 0.3 s
    assert len({a["delivery_id"] for a in attempts}) == 3
    assert len(receiver.received) == 3


async def test_callback_before_return_finishes_the_first_attempt_before_answering(
    make_sim: MakeSim,
) -> None:
    receiver = Receiver(delay=0.05)
    sim = await make_sim(receiver)
    await sim.faults(callback_before_return=True)
    token = (await sim.request_payment())["token"]
    await sim.approve(token)
    assert len(receiver.received) == 1
    assert [a["outcome"] for a in await sim.attempts()] == ["acknowledged"]
    # The browser path too.
    token2 = (await sim.request_payment(order_no="o2"))["token"]
    await sim.client.post(f"pay/{token2}/approve")
    assert len(receiver.received) == 2


async def test_callback_delay_holds_the_first_attempt_back(sim: Sim) -> None:
    await sim.faults(callback_delay=0.15)
    await sim.paid()
    await asyncio.sleep(0.05)
    assert await sim.attempts() == []
    await sim.wait_attempts(1, timeout=1)


async def test_send_now_delivers_n_concurrent_copies_and_reports_first_attempts(
    make_sim: MakeSim,
) -> None:
    receiver = Receiver(delay=0.1)
    sim = await make_sim(receiver)
    token, _ = await sim.paid()
    await sim.wait_attempts(1)
    started = time.monotonic()
    response = await sim.client.post(
        f"_sim/callbacks/{token}/send", json={"copies": 5, "concurrent": True}
    )
    assert time.monotonic() - started < 0.45  # one after another would take 0.5 s
    body = response.json()
    assert len(body["delivery_ids"]) == 5
    assert [a["outcome"] for a in body["first_attempts"]] == ["acknowledged"] * 5
    assert len(receiver.received) == 6


async def test_send_now_sequentially_and_even_when_drops_are_on(make_sim: MakeSim) -> None:
    receiver = Receiver()
    sim = await make_sim(receiver)
    await sim.faults(drop_all_callbacks=True)
    token, _ = await sim.paid()
    response = await sim.client.post(
        f"_sim/callbacks/{token}/send", json={"copies": 2, "concurrent": False}
    )
    assert [a["outcome"] for a in response.json()["first_attempts"]] == ["acknowledged"] * 2
    assert len(receiver.received) == 2


async def test_each_copy_follows_its_own_redelivery_rules(make_sim: MakeSim) -> None:
    receiver = Receiver(script=[(500, "no")])
    sim = await make_sim(receiver, callback_interval=0.01, callback_max_attempts=3)
    await sim.faults(duplicate_callbacks=2)
    await sim.paid()
    await sim.wait_attempts(6)
    await asyncio.sleep(0.05)
    attempts = await sim.attempts()
    assert len(attempts) == 6
    for delivery in {a["delivery_id"] for a in attempts}:
        assert sorted(a["attempt"] for a in attempts if a["delivery_id"] == delivery) == [1, 2, 3]


async def test_send_now_for_an_unpaid_payment_is_a_conflict(sim: Sim) -> None:
    token = (await sim.request_payment())["token"]
    assert (await sim.client.post(f"_sim/callbacks/{token}/send")).status_code == 409


async def test_billkey_only_registration_sends_no_callback(sim: Sim) -> None:
    token, fields = await sim.paid(client_id="auto_test1", amount=0, autopay_flag="Y")
    assert fields["billkey"] and fields["amount"] == "0"
    await sim.request_payment()  # let the loop run
    assert await sim.attempts() == []
    assert (await sim.payment(token))["status_code"] == 5


async def test_reset_cancels_pending_redeliveries(make_sim: MakeSim) -> None:
    receiver = Receiver(script=[(200, {"code": 1})])
    sim = await make_sim(receiver, callback_interval=0.05, callback_max_attempts=20)
    await sim.paid()
    await sim.wait_attempts(1)
    await sim.client.post("_sim/reset")
    count = len(receiver.received)
    await asyncio.sleep(0.15)
    assert len(receiver.received) == count
    assert await sim.attempts() == []


async def test_shutdown_cancels_pending_redeliveries_cleanly() -> None:
    import httpx

    from simulator.app import create_app
    from simulator.config import SimConfig
    from tests.simulator.helpers import payment_body, plkey

    receiver = Receiver(script=[(200, {"code": 1})])
    app = create_app(
        SimConfig(public_url="http://sim.test", callback_interval=60),
        callback_transport=receiver.transport(),
    )
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sim.test"
        ) as client:
            answer = await client.post(
                "/v1.0/payments/request", json=payment_body(), headers=plkey(PAY_TEST_PAYMENT_KEY)
            )
            await client.post(f"/_sim/payments/{answer.json()['token']}/approve")
            while not receiver.received:
                await asyncio.sleep(0.01)
        assert app.state.sim.callbacks.pending == 1  # waiting 60 s for the next try
    assert app.state.sim.callbacks.pending == 0
