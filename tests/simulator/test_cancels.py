"""payments/cancel and cancel/partial: windows judged in KST on the settable clock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.simulator.helpers import Sim


async def paid_at(sim: Sim, when: str, **overrides: Any) -> dict[str, str]:
    await sim.set_clock(when)
    _, fields = await sim.paid(**overrides)
    return fields


async def cancel(sim: Sim, tid: str, at: str | None = None, **extra: Any) -> httpx.Response:
    if at:
        await sim.set_clock(at)
    body = {"client_id": "pay_test", "user_id": "buyer01", "tid": tid, "ip_addr": "127.0.0.1"}
    return await sim.call("POST", "v1.0/payments/cancel", json={**body, **extra})


async def partial(sim: Sim, tid: str, amount: int, pgcode: str = "creditcard") -> httpx.Response:
    return await sim.call("POST", "v1.0/payments/cancel/partial", json={
        "pgcode": pgcode, "client_id": "pay_test", "user_id": "buyer01", "tid": tid,
        "amount": amount, "ip_addr": "127.0.0.1",
    })


async def test_full_cancel_answers_the_vendors_fields_in_korea_time(sim: Sim) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00", amount=3000)
    response = await cancel(sim, fields["tid"], at="2024-05-02T00:30:00+00:00")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"tid", "cid", "amount", "cancel_date"}
    assert (body["tid"], body["amount"], body["cancel_date"]) == (
        fields["tid"], 3000, "2024-05-02 09:30:00"
    )


async def test_cancelling_twice_is_406_code_3005(sim: Sim) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00")
    assert (await cancel(sim, fields["tid"])).status_code == 200
    again = await cancel(sim, fields["tid"])
    assert (again.status_code, again.json()["code"]) == (406, 3005)


@pytest.mark.parametrize(
    ("pgcode", "paid", "last_ok", "first_refused"),
    [
        ("creditcard", "2024-01-10T12:00:00+09:00", "2024-07-08T23:59:59+09:00",
         "2024-07-09T00:00:00+09:00"),  # D+180
        ("banktransfer", "2024-01-10T12:00:00+09:00", "2024-01-10T23:59:59+09:00",
         "2024-01-11T00:00:00+09:00"),  # the payment day, in Korea time
        ("mobile", "2024-01-31T12:00:00+09:00", "2024-01-31T23:59:59+09:00",
         "2024-02-01T00:00:00+09:00"),  # the payment month
        ("checkpay", "2024-01-10T12:00:00+09:00", "2024-02-09T23:00:00+09:00",
         "2024-02-10T00:00:00+09:00"),  # D+30
        ("culture", "2024-01-10T12:00:00+09:00", "2024-02-03T23:00:00+09:00",
         "2024-02-04T00:00:00+09:00"),  # D+24
    ],
)
async def test_cancel_window_per_pgcode_against_the_settable_clock(
    sim: Sim, pgcode: str, paid: str, last_ok: str, first_refused: str
) -> None:
    fields = await paid_at(sim, paid, pgcode=pgcode, amount=1000, order_no="late")
    refused = await cancel(sim, fields["tid"], at=first_refused)
    assert (refused.status_code, refused.json()["code"]) == (406, 3003), refused.json()
    assert (await cancel(sim, fields["tid"], at=last_ok)).status_code == 200


async def test_same_day_rule_uses_korea_time_not_utc(sim: Sim) -> None:
    # 23:30 UTC on Jan 9 is 08:30 KST on Jan 10; 14:59 UTC on Jan 10 is still Jan 10 in KST.
    fields = await paid_at(sim, "2024-01-09T23:30:00+00:00", pgcode="banktransfer")
    assert (await cancel(sim, fields["tid"], at="2024-01-10T14:59:00+00:00")).status_code == 200


async def test_smilecash_has_the_longer_365_day_window(sim: Sim) -> None:
    await sim.set_clock("2024-01-10T12:00:00+09:00")
    token = (await sim.request_payment(pgcode="smilepay"))["token"]
    tid = (await sim.approve(token, result_pgcode="smilecash"))["return_fields"]["tid"]
    assert (await cancel(sim, tid, at="2024-12-01T12:00:00+09:00")).status_code == 200


async def test_checkpay_refuses_partial_cancel_with_3002(sim: Sim) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00", pgcode="checkpay", amount=5000)
    response = await partial(sim, fields["tid"], 1000, pgcode="checkpay")
    assert (response.status_code, response.json()["code"]) == (406, 3002)


async def test_partial_cancels_up_to_the_full_amount_then_one_more_is_refused(sim: Sim) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00", amount=1000)
    tid = fields["tid"]
    too_much = await partial(sim, tid, 1001)
    assert (too_much.status_code, too_much.json()["code"]) == (406, 3004)
    for amount in (300, 300, 400):
        response = await partial(sim, tid, amount)
        assert response.status_code == 200 and response.json()["amount"] == amount
    refused = await partial(sim, tid, 1)
    assert (refused.status_code, refused.json()["code"]) == (406, 3005)
    assert (await cancel(sim, tid)).json()["code"] == 3005


async def test_full_cancel_after_partials_cancels_the_remainder(sim: Sim) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00", amount=1000)
    await partial(sim, fields["tid"], 250)
    response = await cancel(sim, fields["tid"])
    assert response.json()["amount"] == 750


async def test_disposable_cup_deposit_is_never_partially_cancelled(sim: Sim) -> None:
    fields = await paid_at(
        sim, "2024-05-01T10:00:00+09:00", amount=5300, disposable_cup_deposit=300
    )
    response = await partial(sim, fields["tid"], 5001)
    assert (response.status_code, response.json()["code"]) == (406, 3004)
    assert (await partial(sim, fields["tid"], 5000)).status_code == 200
    assert (await cancel(sim, fields["tid"])).json()["amount"] == 300


@pytest.mark.parametrize(
    ("extra", "code"),
    [({"user_id": "someone-else"}, 3007), ({"pgcode": "mobile"}, 2008)],
)
async def test_cancel_must_name_the_right_user_and_method(
    sim: Sim, extra: dict[str, str], code: int
) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00")
    response = await cancel(sim, fields["tid"], **extra)
    assert (response.status_code, response.json()["code"]) == (406, code)


async def test_cancel_may_name_the_result_pgcode_of_naverpay(sim: Sim) -> None:
    fields = await paid_at(sim, "2024-05-01T10:00:00+09:00", pgcode="naverpay")
    assert (await partial(sim, fields["tid"], 100, pgcode="navercard")).status_code == 200
    assert (await cancel(sim, fields["tid"], pgcode="naverpay")).status_code == 200


async def test_an_unapproved_payment_cannot_be_cancelled(sim: Sim) -> None:
    token = (await sim.request_payment())["token"]
    await sim.client.post(f"_sim/payments/{token}/decline")
    # No tid was ever issued, so the tid is unknown.
    response = await cancel(sim, "tpay_test-000")
    assert response.json()["code"] == 2010


async def test_cancels_show_on_the_sim_payment(sim: Sim) -> None:
    await sim.set_clock("2024-05-01T10:00:00+09:00")
    token, fields = await sim.paid(amount=1000)
    await partial(sim, fields["tid"], 400)
    payment = await sim.payment(token)
    assert (payment["cancelled_amount"], payment["remaining_amount"]) == (400, 600)
    assert payment["cancels"][0]["kind"] == "partial"
