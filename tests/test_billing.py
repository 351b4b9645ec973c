"""Autopay against the real simulator: billkeys from first payments, charges (once, whatever
is retried), revoke, amount-0 registration, mobile's monthly rules, and no billkey leaks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.billing.endpoints import request_time
from app.billing.service import mobile_rule_breach, previous_month
from app.kit.korea_time import KST
from app.models import Billkey
from tests.sim_harness import LoseAnswers, SimGateway, sim_gateway
from tests.support import scalar

AUTO_TEST = {"client_id": "auto_test",
             "payment_key": "NDBBREM2RjhEMENBQ0ZGODZDNkEyNEQxQUIxRTY5QUE=",
             "search_key": "QjBCMjZBNUNBMEMzRDVDNzY2NkQ2OTU3QzFEQkM2QkY="}
AUTO_TEST1 = {"client_id": "auto_test1",
              "payment_key": "NUMzRDJFQzVERkRBNTQzQjY1MkUzMTQ3NThFREU2Mzg=",
              "search_key": "QUI4MUEyOEYxQTZFMTAxQjE4NjY3M0I5MjBDMzk1OEM="}
MERCHANTS = json.dumps([AUTO_TEST, AUTO_TEST1])
AUTOPAY = "v1.0/payments/autopay"


@pytest.fixture
def lose() -> LoseAnswers:
    return LoseAnswers(httpx.MockTransport(lambda request: httpx.Response(500)))


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine, lose: LoseAnswers
             ) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url, lose=lose, payletter_merchants=MERCHANTS) as gateway:
        yield gateway


def set_now(gw: SimGateway, instant: datetime) -> None:
    """Our clock (the billing rules' `now`)."""
    gw.service.dependency_overrides[request_time] = lambda: instant


async def set_clocks(gw: SimGateway, instant: datetime) -> None:
    """Ours and the simulator's, to the same instant."""
    set_now(gw, instant)
    r = await gw.sim.post("/_sim/clock", json={"now": instant.isoformat(), "ticking": False})
    assert r.status_code == 200, r.text


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def first_payment(gw: SimGateway, *, client_id: str = "auto_test",
                        pgcode: str = "creditcard", amount: int = 1000,
                        user_id: str = "subscriber1") -> dict[str, Any]:
    """A first payment with autopay_flag Y, paid through the window; the billkey it left."""
    order = await gw.create_order(client_id=client_id, pgcode=pgcode, amount=amount,
                                  user_id=user_id, autopay_flag="Y")
    await gw.pay(order)

    async def acknowledged() -> bool:
        log = (await gw.sim.get("/_sim/callbacks", params={"order_no": order["order_no"]})).json()
        return any(a["outcome"] == "acknowledged" for a in log)

    await wait_for(acknowledged)
    assert (await gw.order(order["order_no"]))["status"] == "paid"
    keys = (await gw.shop.get("/billing/billkeys", params={"user_id": user_id})).json()
    billkey: dict[str, Any] = keys["billkeys"][-1]
    return {"order": order, "billkey": billkey}


async def sim_billkey(gw: SimGateway, masked: str) -> str:
    """The full billkey as the simulator (Payletter) knows it."""
    keys = [b["billkey"] for b in (await gw.sim.get("/_sim/billkeys")).json()]
    matching = [k for k in keys if k.endswith(masked.lstrip("…"))]
    assert len(matching) == 1
    return matching[0]


async def autopay_payments(gw: SimGateway) -> list[dict[str, Any]]:
    payments = (await gw.sim.get("/_sim/payments")).json()
    return [p for p in payments if p["origin"] == "autopay"]


async def charge(gw: SimGateway, billkey_id: int, key: str | None = None,
                 **overrides: Any) -> httpx.Response:
    body = {"billkey_id": billkey_id, "amount": 5000, "product_name": "월 구독"} | overrides
    headers = {"Idempotency-Key": key} if key else {}
    return await gw.shop.post("/billing/charges", json=body, headers=headers)


async def billing_audit(gw: SimGateway, action: str = "autopay_charge"
                        ) -> list[dict[str, Any]]:
    r = await gw.ops.get("/billing/audit", params={"action": action})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["audit"]
    return rows[::-1]  # oldest first


# ---- acceptance -------------------------------------------------------------------------


async def test_a_first_payment_stores_its_billkey_masked(gw: SimGateway, engine: AsyncEngine
                                                         ) -> None:
    first = await first_payment(gw)
    billkey = first["billkey"]
    assert billkey["client_id"] == "auto_test" and billkey["user_id"] == "subscriber1"
    assert billkey["pgcode"] == "creditcard" and billkey["status"] == "active"
    assert billkey["first_amount"] == 1000 and billkey["first_paid_at"]
    assert billkey["last_charged_at"] is None
    assert billkey["verified_at"] is not None  # the callback brought it
    full = await sim_billkey(gw, billkey["masked_billkey"])
    assert billkey["masked_billkey"] == f"…{full[-4:]}" and "billkey" not in billkey
    # Stored once although the return and the callback both carried it.
    assert await scalar(engine, "SELECT count(*) FROM billkeys") == 1
    assert await scalar(engine, "SELECT billkey FROM billkeys") == full
    ops_view = await gw.ops.get(f"/billing/billkeys/{billkey['id']}")
    assert ops_view.json() == billkey


async def test_the_same_idempotency_key_twice_charges_once(gw: SimGateway, engine: AsyncEngine
                                                           ) -> None:
    billkey = (await first_payment(gw))["billkey"]
    first = await charge(gw, billkey["id"], key="sub-2026-02")
    second = await charge(gw, billkey["id"], key="sub-2026-02")
    assert first.status_code == second.status_code == 201, first.text
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"

    paid = first.json()
    assert paid["status"] == "paid" and paid["amount"] == 5000
    assert paid["client_id"] == "auto_test" and paid["pgcode"] == "creditcard"
    assert paid["billkey_id"] == billkey["id"] and paid["tid"] and paid["cid"]
    assert paid["transaction_date"] and paid["paid_at"]
    sim_charges = await autopay_payments(gw)
    assert len(sim_charges) == 1
    assert sim_charges[0]["tid"] == paid["tid"] and sim_charges[0]["order_no"] == paid["order_no"]
    assert await scalar(engine, "SELECT count(*) FROM orders") == 2  # first payment + charge

    detail = await gw.order(paid["order_no"])
    assert [(t["from_status"], t["to_status"]) for t in detail["transitions"]] == [
        ("created", "paid")]
    assert [(a["action"], a["outcome"]) for a in detail["audit"]] == [("autopay_charge", "paid")]
    assert detail["audit"][0]["detail"]["billkey_id"] == billkey["id"]

    after = (await gw.shop.get(f"/billing/billkeys/{billkey['id']}")).json()
    assert after["last_charged_at"] is not None
    rows = await billing_audit(gw)
    assert [(r["actor"], r["outcome"], r["order_no"]) for r in rows] == [
        ("shop", "paid", paid["order_no"])]

    # The same key with another body is refused, and charges nothing.
    other = await charge(gw, billkey["id"], key="sub-2026-02", amount=6000)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    assert len(await autopay_payments(gw)) == 1


async def test_a_revoked_billkey_is_refused_and_both_are_audited(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    assert (await gw.shop.post(f"/billing/billkeys/{billkey['id']}/revoke")).status_code == 403
    r = await gw.ops.post(f"/billing/billkeys/{billkey['id']}/revoke")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked" and r.json()["revoked_at"]
    again = await gw.ops.post(f"/billing/billkeys/{billkey['id']}/revoke")
    assert again.json()["status"] == "revoked"

    refused = await charge(gw, billkey["id"], key="after-revoke")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["reason"] == "billkey_revoked" and "revoked" in error["message"]
    assert await autopay_payments(gw) == []  # nothing sent to Payletter
    replay = await charge(gw, billkey["id"], key="after-revoke")
    assert replay.status_code == 409 and replay.json() == refused.json()

    revokes = await billing_audit(gw, "billkey_revoke")
    assert [(r["actor"], r["outcome"]) for r in revokes] == [
        ("ops", "revoked"), ("ops", "already_revoked")]
    assert revokes[0]["detail"]["billkey_id"] == billkey["id"]
    charges = await billing_audit(gw)
    assert [(r["outcome"], r["detail"]["reason"]) for r in charges] == [
        ("refused", "billkey_revoked")]
    listed = (await gw.ops.get("/billing/billkeys", params={"status": "revoked"})).json()
    assert [b["id"] for b in listed["billkeys"]] == [billkey["id"]]


# ---- refusals before Payletter ---------------------------------------------------------


async def test_unknown_or_foreign_billkeys_are_refused_before_payletter(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    unknown = await charge(gw, billkey["id"] + 1000)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["reason"] == "unknown_billkey"
    other_user = await charge(gw, billkey["id"], user_id="somebody_else")
    assert other_user.status_code == 422
    assert other_user.json()["error"]["field"] == "user_id"
    assert other_user.json()["error"]["reason"] == "billkey_mismatch"
    other_merchant = await charge(gw, billkey["id"], client_id="pay_test")
    assert other_merchant.status_code == 422
    assert other_merchant.json()["error"]["field"] == "client_id"
    matching = await charge(gw, billkey["id"], client_id="auto_test", user_id="subscriber1")
    assert matching.status_code == 201, matching.text
    assert len(await autopay_payments(gw)) == 1
    outcomes = [(r["outcome"], r["detail"].get("reason")) for r in await billing_audit(gw)]
    assert outcomes == [("refused", "unknown_billkey"), ("refused", "billkey_mismatch"),
                        ("refused", "billkey_mismatch"), ("paid", None)]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"amount": 99}, "amount"),  # creditcard's minimum is 100
    ({"amount": 1000.0}, "amount"),
    ({"taxfree_amount": 6000}, "taxfree_amount"),
    ({"product_name": "<b>x</b>"}, "product_name"),
    ({"order_no": "has space"}, "order_no"),
    ({"service_name": "s" * 21}, "service_name"),
])
async def test_bad_charge_terms_get_422_and_store_nothing(
    gw: SimGateway, engine: AsyncEngine, overrides: dict[str, Any], field: str
) -> None:
    billkey = (await first_payment(gw))["billkey"]
    r = await charge(gw, billkey["id"], **overrides)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert await scalar(engine, "SELECT count(*) FROM orders") == 1
    assert await autopay_payments(gw) == []


async def test_a_method_without_autopay_is_refused(gw: SimGateway) -> None:
    async with gw.service.state.gateway.sessionmaker() as session:
        session.add(Billkey(client_id="auto_test", user_id="u1", pgcode="kakaopay",
                            billkey="tbauto_test-kakaopay-0001", first_amount=1000,
                            first_paid_at=datetime.now(UTC), status="active",
                            created_at=datetime.now(UTC)))
        await session.commit()
    keys = (await gw.ops.get("/billing/billkeys", params={"user_id": "u1"})).json()["billkeys"]
    r = await charge(gw, keys[0]["id"])
    assert r.status_code == 422
    assert r.json()["error"]["reason"] == "autopay_not_supported"
    assert "kakaopay has no autopay" in r.json()["error"]["message"]
    assert await autopay_payments(gw) == []


async def test_a_taken_order_no_is_a_conflict(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    assert (await charge(gw, billkey["id"], order_no="SUB-1")).status_code == 201
    again = await charge(gw, billkey["id"], order_no="SUB-1")
    assert again.status_code == 409 and again.json()["error"]["field"] == "order_no"
    assert len(await autopay_payments(gw)) == 1


# ---- Payletter's answers ----------------------------------------------------------------


async def test_a_payletter_refusal_fails_the_charge_with_its_reason(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    fault = {"status": 406, "code": 4001, "message": "카드 한도 초과", "times": 1}
    await gw.sim.post("/_sim/faults", json={"api_errors": {"payments/autopay": fault}})
    r = await charge(gw, billkey["id"], key="refused-1")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "payletter_refused" and "카드 한도 초과" in error["message"]
    assert error["payletter_code"] == 4001
    detail = await gw.order(error["order_no"])
    assert detail["status"] == "failed" and "카드 한도 초과" in detail["last_error"]
    assert [(a["action"], a["outcome"]) for a in detail["audit"]] == [
        ("autopay_charge", "refused")]
    # A final answer: the same key replays it and sends nothing.
    replay = await charge(gw, billkey["id"], key="refused-1")
    assert replay.status_code == 422 and replay.json() == r.json()
    assert await autopay_payments(gw) == []


async def test_after_a_timeout_a_retry_asks_status_and_never_charges_twice(
    gw: SimGateway, lose: LoseAnswers
) -> None:
    billkey = (await first_payment(gw))["billkey"]
    lose.lose(AUTOPAY, reaches_payletter=True)  # Payletter charges; its answer is lost
    r = await charge(gw, billkey["id"], key="timeout-1")
    assert r.status_code == 504, r.text
    error = r.json()["error"]
    assert error["reason"] == "outcome_unknown" and "never charges twice" in error["message"]
    order_no = error["order_no"]
    assert (await gw.order(order_no))["status"] == "created"
    assert len(await autopay_payments(gw)) == 1

    # Still losing every autopay answer: the retry must not need (or send) one.
    retry = await charge(gw, billkey["id"], key="timeout-1")
    assert retry.status_code == 201, retry.text
    assert retry.json()["status"] == "paid" and retry.json()["order_no"] == order_no
    sim_charges = await autopay_payments(gw)
    assert len(sim_charges) == 1 and retry.json()["tid"] == sim_charges[0]["tid"]
    replay = await charge(gw, billkey["id"], key="timeout-1")
    assert replay.status_code == 201 and replay.json() == retry.json()
    audit = [(a["outcome"], a["detail"].get("verification"))
             for a in (await gw.order(order_no))["audit"]]
    assert audit == [("unknown", None), ("paid", "status_confirmed")]


async def test_a_charge_that_never_reached_payletter_is_resent_only_after_the_settle_time(
    gw: SimGateway, lose: LoseAnswers
) -> None:
    billkey = (await first_payment(gw))["billkey"]
    start = datetime.now(UTC)
    set_now(gw, start)
    lose.lose(AUTOPAY, reaches_payletter=False)
    r = await charge(gw, billkey["id"], order_no="SUB-LOST")
    assert r.status_code == 504
    assert await autopay_payments(gw) == []
    lose.paths.clear()

    # Same order_no again at once: Payletter has no payment, but the first request could
    # still be on its way there, so nothing is sent yet.
    early = await charge(gw, billkey["id"], order_no="SUB-LOST")
    assert early.status_code == 409, early.text
    assert early.json()["error"]["reason"] == "outcome_pending"
    assert int(early.headers["retry-after"]) > 0
    assert await autopay_payments(gw) == []

    set_now(gw, start + timedelta(minutes=5))
    late = await charge(gw, billkey["id"], order_no="SUB-LOST")
    assert late.status_code == 201, late.text
    assert late.json()["status"] == "paid"
    assert len(await autopay_payments(gw)) == 1
    audit = [a["outcome"] for a in (await gw.order("SUB-LOST"))["audit"]]
    assert audit == ["unknown", "pending", "paid"]


async def test_concurrent_copies_of_one_charge_reach_payletter_once(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    by_key = await asyncio.gather(*(charge(gw, billkey["id"], key="storm") for _ in range(5)))
    by_order_no = await asyncio.gather(*(charge(gw, billkey["id"], order_no="STORM-1")
                                         for _ in range(5)))
    for answers in (by_key, by_order_no):
        codes = [a.status_code for a in answers]
        assert set(codes) <= {201, 409} and 201 in codes, [a.text for a in answers]
        assert len({a.json()["tid"] for a in answers if a.status_code == 201}) == 1
    assert len(await autopay_payments(gw)) == 2


async def test_a_payletter_5xx_is_in_doubt_too(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    fault = {"status": 500, "code": 999, "message": "Internal server error", "times": 1}
    await gw.sim.post("/_sim/faults", json={"api_errors": {"payments/autopay": fault}})
    r = await charge(gw, billkey["id"], key="5xx")
    assert r.status_code == 502 and r.json()["error"]["reason"] == "outcome_unknown"
    retry = await charge(gw, billkey["id"], key="5xx")  # status: no payment, too early
    assert retry.status_code == 409 and retry.json()["error"]["reason"] == "outcome_pending"
    assert await autopay_payments(gw) == []


# ---- mobile's monthly rules --------------------------------------------------------------


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=KST)


async def test_mobile_monthly_rules_are_enforced_before_payletter(gw: SimGateway) -> None:
    await set_clocks(gw, kst(2026, 1, 15, 10, 0))
    billkey = (await first_payment(gw, pgcode="mobile", amount=9900))["billkey"]
    assert billkey["pgcode"] == "mobile"

    async def refused(when: datetime, amount: int, rule: str) -> None:
        await set_clocks(gw, when)
        r = await charge(gw, billkey["id"], amount=amount)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["reason"] == "mobile_autopay_rule" and error["rule"] == rule
        assert "mobile autopay rule" in error["message"]

    await refused(kst(2026, 1, 20, 10, 0), 9900, "one_month_after_first")
    await refused(kst(2026, 2, 15, 10, 0), 5000, "same_amount")
    await refused(kst(2026, 2, 16, 10, 0), 9900, "same_day")
    await refused(kst(2026, 2, 14, 23, 30), 9900, "same_day")
    assert await autopay_payments(gw) == []

    # 15 February 00:30 in Korea is still 14 February in UTC: the day counts in Korea.
    await set_clocks(gw, kst(2026, 2, 15, 0, 30))
    february = await charge(gw, billkey["id"], amount=9900)
    assert february.status_code == 201, february.text  # the simulator agreed

    await refused(kst(2026, 4, 15, 10, 0), 9900, "previous_month_paid")
    await set_clocks(gw, kst(2026, 3, 15, 10, 0))
    assert (await charge(gw, billkey["id"], amount=9900)).status_code == 201
    assert len(await autopay_payments(gw)) == 2
    rules = [r["detail"].get("reason") for r in await billing_audit(gw)]
    assert rules.count("mobile_autopay_rule") == 5


@pytest.mark.parametrize(("first", "now", "amount", "rule"), [
    (kst(2026, 1, 15, 9), kst(2026, 2, 15, 23), 1000, None),
    (kst(2026, 1, 15, 9), kst(2026, 2, 15, 23), 1001, "same_amount"),
    (kst(2026, 1, 15, 9), kst(2026, 1, 30, 9), 1000, "one_month_after_first"),
    (kst(2026, 1, 15, 9), kst(2026, 2, 14, 9), 1000, "same_day"),
    # A short month's last day stands in for the 29th-31st.
    (kst(2026, 1, 31, 9), kst(2026, 2, 28, 9), 1000, None),
    (kst(2026, 1, 31, 9), kst(2026, 2, 27, 9), 1000, "same_day"),
    (kst(2026, 1, 31, 9), kst(2026, 3, 31, 9), 1000, None),
    (kst(2026, 2, 1, 9), kst(2026, 3, 1, 9), 1000, None),  # 28 days: a month later
    (kst(2025, 12, 10, 9), kst(2026, 1, 10, 9), 1000, None),  # across the year
])
def test_mobile_rule_dates(first: datetime, now: datetime, amount: int, rule: str | None
                           ) -> None:
    breach = mobile_rule_breach(first_amount=1000, first_paid_at=first, amount=amount, now=now,
                                paid_last_month=True)
    assert (breach.rule if breach else None) == rule


def test_previous_month_is_a_korea_month() -> None:
    # 2026-02-28 16:00 UTC is 1 March 01:00 in Korea: the previous month is February.
    start, end = previous_month(datetime(2026, 2, 28, 16, 0, tzinfo=UTC))
    assert (start, end) == (kst(2026, 2, 1), kst(2026, 3, 1))
    assert previous_month(kst(2026, 1, 10)) == (kst(2025, 12, 1), kst(2026, 1, 1))
    breach = mobile_rule_breach(first_amount=10, first_paid_at=kst(2026, 1, 10), amount=10,
                                now=kst(2026, 3, 10), paid_last_month=False)
    assert breach is not None and breach.rule == "previous_month_paid"
    assert "2026-02" in breach.message


# ---- amount-0 registration ----------------------------------------------------------------


async def test_an_amount_0_registration_ends_paid_with_a_billkey_and_can_be_charged(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    body = {"client_id": "auto_test1", "pgcode": "creditcard", "product_name": "정기결제 등록",
            "user_id": "signup1"}
    r = await gw.shop.post("/billing/registrations", json=body,
                           headers={"Idempotency-Key": "reg-1"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "pending" and order["amount"] == 0 and order["token"]
    replay = await gw.shop.post("/billing/registrations", json=body,
                                headers={"Idempotency-Key": "reg-1"})
    assert replay.json() == order and replay.headers["idempotent-replayed"] == "true"
    sent = (await gw.sim.get(f"/_sim/payments/{order['token']}")).json()
    assert sent["amount"] == 0 and sent["autopay_flag"] is True

    await gw.pay(order)
    detail = await gw.order(order["order_no"])
    assert detail["status"] == "paid" and detail["amount"] == 0 and detail["tid"]
    assert [(d["kind"], d["outcome"]) for d in detail["deliveries"]] == [("return", "applied")]
    assert [(a["action"], a["outcome"]) for a in detail["audit"]] == [
        ("autopay_registration", "window_issued")]
    await asyncio.sleep(0.2)  # no callback: no money moved
    callbacks = await gw.sim.get("/_sim/callbacks", params={"order_no": order["order_no"]})
    assert callbacks.json() == []

    keys = (await gw.shop.get("/billing/billkeys", params={"user_id": "signup1"})).json()
    billkey = keys["billkeys"][0]
    assert billkey["client_id"] == "auto_test1" and billkey["first_amount"] == 0
    # Only the buyer's return brought it (payhash doesn't cover billkey): unverified
    assert billkey["verified_at"] is None
    charged = await charge(gw, billkey["id"], amount=12000)
    assert charged.status_code == 201, charged.text
    assert charged.json()["client_id"] == "auto_test1" and charged.json()["amount"] == 12000
    after = (await gw.shop.get(f"/billing/billkeys/{billkey['id']}")).json()
    assert after["verified_at"] is not None  # Payletter charged it: genuine


async def test_a_registration_needs_a_merchant_payletter_allows_it_for(gw: SimGateway) -> None:
    r = await gw.shop.post("/billing/registrations", json={
        "client_id": "auto_test", "pgcode": "creditcard", "product_name": "등록",
        "user_id": "signup2"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "payletter_refused"
    assert (await gw.order(error["order_no"]))["status"] == "failed"
    rows = await billing_audit(gw, "autopay_registration")
    assert [r["outcome"] for r in rows] == ["refused"]
    # Amount 0 stays refused everywhere else.
    plain = await gw.shop.post("/orders", json={
        "client_id": "auto_test1", "pgcode": "creditcard", "amount": 0,
        "product_name": "x", "user_id": "u", "autopay_flag": "Y"})
    assert plain.status_code == 422 and plain.json()["error"]["field"] == "amount"
    not_autopay = await gw.shop.post("/billing/registrations", json={
        "client_id": "auto_test1", "pgcode": "kakaopay", "product_name": "등록",
        "user_id": "signup3"})
    assert not_autopay.status_code == 422
    assert not_autopay.json()["error"]["field"] == "autopay_flag"


# ---- auth -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/billing/charges", "shop"),
    ("POST", "/billing/registrations", "shop"),
    ("POST", "/billing/billkeys/1/revoke", "ops"),
    ("GET", "/billing/audit", "ops"),
    ("GET", "/billing/billkeys", "both"),
])
async def test_billing_needs_the_right_token(gw: SimGateway, method: str, path: str,
                                             allowed: str) -> None:
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.service),
                                  base_url="http://gateway.localhost")
    async with anonymous:
        r = await anonymous.request(method, path, json={})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    for role, client in (("shop", gw.shop), ("ops", gw.ops)):
        r = await client.request(method, path, json={})
        if allowed in (role, "both"):
            assert r.status_code != 403, (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)


# ---- the billkey never leaves --------------------------------------------------------------


async def test_no_full_billkey_in_any_answer_log_event_or_audit_row(
    gw: SimGateway, engine: AsyncEngine, lose: LoseAnswers, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything the service logs at its running level, and our own modules at DEBUG too
    # (third-party drivers' DEBUG output echoes SQL parameters; nobody runs them like that).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="app")
    answers: list[httpx.Response] = []
    first = await first_payment(gw)
    billkey, order = first["billkey"], first["order"]
    full = await sim_billkey(gw, billkey["masked_billkey"])

    answers.append(await charge(gw, billkey["id"], key="leak-1"))
    lose.lose(AUTOPAY)
    answers.append(await charge(gw, billkey["id"], key="leak-2"))
    lose.paths.clear()
    await gw.sim.post("/_sim/faults", json={"api_errors": {"payments/autopay": {
        "status": 406, "code": 4001, "message": f"bad billkey {full}", "times": 1}}})
    answers.append(await charge(gw, billkey["id"], key="leak-3"))
    answers.append(await charge(gw, billkey["id"], key="leak-2"))
    answers.append(await gw.ops.post(f"/billing/billkeys/{billkey['id']}/revoke"))
    answers.append(await charge(gw, billkey["id"], key="leak-4"))
    answers.append(await gw.shop.get("/billing/billkeys"))
    answers.append(await gw.ops.get(f"/billing/billkeys/{billkey['id']}"))
    answers.append(await gw.ops.get("/billing/audit"))
    for order_no in await _order_nos(engine):
        answers.append(await gw.ops.get(f"/orders/{order_no}"))
    assert [a.status_code for a in answers[:6]] == [201, 504, 422, 201, 200, 409]

    for answer in answers:
        assert full not in answer.text, answer.request.url
        assert full not in str(answer.headers)
    ours = [r for r in caplog.records if not r.name.startswith("simulator")]
    assert ours and all(full not in r.getMessage() for r in ours)
    assert all(full not in (r.exc_text or "") for r in ours)
    for table in ("outbox_events", "audit_log", "orders", "idempotency_keys",
                  "order_transitions"):
        async with engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
        assert rows and all(full not in str(row) for row in rows), table
    # The one other place it is kept: the raw body of the deliveries that brought it.
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE raw_body LIKE :k",
                        k=f"%{full}%") == 2
    assert order["order_no"]


async def _order_nos(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT order_no FROM orders"))).scalars())


async def test_a_billkey_edited_into_the_return_is_never_stored_the_callbacks_is(
    gw: SimGateway, engine: AsyncEngine
) -> None:
    """payhash doesn't cover billkey: the buyer's return can't choose the stored key, and the
    genuine callback's key isn't dropped as a duplicate when the return came first."""
    # The callback waits a moment, so the edited return is the first to arrive.
    assert (await gw.sim.post("/_sim/faults", json={"callback_delay": 0.3})).status_code == 200
    order = await gw.create_order(client_id="auto_test", amount=1000, user_id="subscriber1",
                                  autopay_flag="Y")
    result = await gw.pay(order, with_return=False)
    forged = result["return_fields"] | {"billkey": "FORGED-BY-THE-BUYER-0001"}
    r = await gw.browser.post(result["return_url"], data=forged)
    assert r.status_code == 303

    async def key_stored() -> bool:
        return bool(await scalar(engine, "SELECT count(*) FROM billkeys"))

    await wait_for(key_stored)  # the callback follows the approval on its own
    genuine = result["return_fields"]["billkey"]
    assert await scalar(engine, "SELECT billkey FROM billkeys") == genuine
    keys = (await gw.shop.get("/billing/billkeys", params={"user_id": "subscriber1"})).json()
    assert [k["verified_at"] is not None for k in keys["billkeys"]] == [True]
    detail = await gw.order(order["order_no"])
    assert {(d["kind"], d["outcome"]) for d in detail["deliveries"]} == {
        ("return", "applied"), ("callback", "duplicate")}
