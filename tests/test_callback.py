"""POST /payletter/callback: verified, applied once, recorded, answered after commit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import FORBIDDEN_SOURCES
from tests.factories import (
    callback_body,
    create_order,
    path_of,
    return_fields,
    sent_request,
)
from tests.fake_payletter import FakePayletter
from tests.support import PAYLETTER_IP, client_for, fail_next_commit, scalar

ACK = {"code": 0, "message": ""}


async def order_state(shop: httpx.AsyncClient, order_no: str) -> dict[str, Any]:
    r = await shop.get(f"/orders/{order_no}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


async def applications(engine: AsyncEngine, order_no: str) -> int:
    """How many times a result moved the order to paid."""
    return int(await scalar(
        engine,
        "SELECT count(*) FROM order_transitions t JOIN orders o ON o.id = t.order_id "
        "WHERE o.order_no = :no AND t.to_status = 'paid'", no=order_no))


async def deliveries(engine: AsyncEngine) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM deliveries"))


async def test_the_vendor_example_pays_the_order_and_is_recorded(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop, pgcode="mobile", amount=1000)
    body = callback_body(order)
    r = await payletter_peer.post("/payletter/callback", json=body)
    assert r.status_code == 200 and r.json() == ACK

    paid = await order_state(shop, order["order_no"])
    assert paid["status"] == "paid"
    assert paid["tid"] == body["tid"] and paid["cid"] == body["cid"]
    assert paid["transaction_date"] == "2018-08-16T06:03:52Z"  # 15:03:52 Korea time
    assert paid["payment_details"]["cash_receipt"]["deal_no"] == "현금영수증 발급시 주문번호"
    [delivery] = paid["deliveries"]
    assert delivery["kind"] == "callback" and delivery["source_addr"] == PAYLETTER_IP
    assert (delivery["verification"], delivery["outcome"]) == ("payhash_ok", "applied")
    assert body["payhash"] not in json.dumps(paid)  # the API never shows the raw body
    raw = await scalar(engine, "SELECT raw_body FROM deliveries")
    assert json.loads(raw) == body


async def test_twenty_redeliveries_apply_once_and_are_all_acknowledged_and_recorded(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    body = callback_body(order)
    answers = [(await payletter_peer.post("/payletter/callback", json=body)).json()
               for _ in range(20)]
    assert answers == [ACK] * 20
    assert await applications(engine, order["order_no"]) == 1
    outcomes = [d["outcome"] for d in (await order_state(shop, order["order_no"]))["deliveries"]]
    assert outcomes == ["applied"] + ["duplicate"] * 19


async def test_twenty_concurrent_copies_apply_once(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    body = callback_body(order)

    async def deliver() -> dict[str, Any]:
        async with client_for(gateway_app, peer=PAYLETTER_IP) as c:
            result: dict[str, Any] = (await c.post("/payletter/callback", json=body)).json()
            return result

    answers = await asyncio.gather(*(deliver() for _ in range(20)))
    assert answers == [ACK] * 20
    assert await applications(engine, order["order_no"]) == 1
    assert await deliveries(engine) == 20
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE outcome='applied'") == 1


@pytest.mark.parametrize(
    ("overrides", "code", "verification"),
    [
        ({"payhash": "0" * 64}, 401, "payhash_bad"),
        ({"payhash": "not-even-hex"}, 401, "payhash_bad"),
        ({"payhash": None}, None, None),  # no payhash on a card result: asked Payletter
    ],
)
async def test_a_result_whose_payhash_fails_changes_nothing(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    overrides: dict[str, Any], code: int | None, verification: str | None,
) -> None:
    order = await create_order(shop)
    body = callback_body(order, **overrides)
    body = {k: v for k, v in body.items() if v is not None}
    r = await payletter_peer.post("/payletter/callback", json=body)
    assert r.json()["code"] != 0
    if code is not None:
        assert r.json()["code"] == code
    state = await order_state(shop, order["order_no"])
    assert state["status"] == "pending" and state["tid"] is None
    [delivery] = state["deliveries"]
    assert delivery["outcome"] == "rejected"
    if verification:
        assert delivery["verification"] == verification


@pytest.mark.parametrize(
    ("field", "value"), [("amount", 100), ("user_id", "someone_else")]
)
async def test_a_verified_result_that_contradicts_the_order_holds_it_for_review(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, field: str, value: Any
) -> None:
    order = await create_order(shop, amount=1000)
    body = callback_body(order, **{field: value})  # payhash recomputed: genuinely signed
    r = await payletter_peer.post("/payletter/callback", json=body)
    assert r.json()["code"] == 409
    state = await order_state(shop, order["order_no"])
    assert state["status"] == "needs_review"
    assert field in state["review_reason"]
    # A redelivery is recorded but changes nothing more.
    again = await payletter_peer.post("/payletter/callback", json=body)
    assert again.json()["code"] != 0
    assert (await order_state(shop, order["order_no"]))["status"] == "needs_review"


async def test_a_result_for_an_unknown_order_is_stored_and_answered_non_zero(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ghost = {"order_no": "NOPE-1", "user_id": "test_user_id", "amount": 1000,
             "pgcode": "creditcard"}
    r = await payletter_peer.post("/payletter/callback", json=callback_body(ghost))
    assert r.json()["code"] == 404
    row = await scalar(engine, "SELECT outcome || ':' || verification FROM deliveries "
                               "WHERE order_no = 'NOPE-1'")
    assert row == "unknown_order:payhash_ok"


async def test_a_tid_already_applied_to_another_order_is_held_for_review(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient
) -> None:
    first = await create_order(shop)
    second = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(first, tid="T-SAME"))
    r = await payletter_peer.post("/payletter/callback", json=callback_body(second, tid="T-SAME"))
    assert r.json()["code"] == 409
    assert (await order_state(shop, second["order_no"]))["status"] == "needs_review"
    assert (await order_state(shop, first["order_no"]))["status"] == "paid"


async def test_a_second_payment_for_a_paid_order_is_held_for_review(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient
) -> None:
    order = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(order, tid="T-1"))
    r = await payletter_peer.post("/payletter/callback", json=callback_body(order, tid="T-2"))
    assert r.json()["code"] == 409
    state = await order_state(shop, order["order_no"])
    assert state["status"] == "needs_review" and "T-2" in state["review_reason"]
    assert state["tid"] == "T-1"


async def test_a_forbidden_source_is_refused_counted_and_not_stored(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    before = FORBIDDEN_SOURCES.labels(kind="callback")._value.get()
    async with client_for(gateway_app, peer="127.0.0.9") as stranger:
        r = await stranger.post("/payletter/callback", json=callback_body(order))
    assert r.status_code == 403 and r.json()["code"] == 403
    assert FORBIDDEN_SOURCES.labels(kind="callback")._value.get() == before + 1
    assert await deliveries(engine) == 0
    assert (await order_state(shop, order["order_no"]))["status"] == "pending"


async def test_x_forwarded_for_from_an_untrusted_peer_is_not_believed(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    async with client_for(gateway_app, peer="127.0.0.9") as spoofer:
        r = await spoofer.post("/payletter/callback", json=callback_body(order),
                               headers={"X-Forwarded-For": PAYLETTER_IP})
    assert r.json()["code"] == 403
    assert (await order_state(shop, order["order_no"]))["status"] == "pending"


async def test_a_trusted_proxy_passes_payletter_s_address_through(
    database_url: str, engine: AsyncEngine, fake_payletter: Any
) -> None:
    from app.main import create_app
    from tests.support import make_settings, running

    settings = make_settings(database_url, trusted_proxies="127.0.0.5")
    async with running(create_app(settings, fake_payletter.transport)) as app:
        async with client_for(app, authorization="Bearer shop-token-for-tests") as shop:
            order = await create_order(shop)
        async with client_for(app, peer="127.0.0.5") as proxy:
            r = await proxy.post("/payletter/callback", json=callback_body(order),
                                 headers={"X-Forwarded-For": f"6.6.6.6, {PAYLETTER_IP}"})
            assert r.json() == ACK
            spoofed = await proxy.post("/payletter/callback", json=callback_body(order),
                                       headers={"X-Forwarded-For": f"{PAYLETTER_IP}, 6.6.6.6"})
            assert spoofed.json()["code"] == 403
    assert await scalar(engine, "SELECT source_addr FROM deliveries") == PAYLETTER_IP


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[1, 2, 3]",
        b"",
        json.dumps({"order_no": "X", "tid": "T", "user_id": "u", "amount": "abc"}).encode(),
        json.dumps({"order_no": "X", "tid": "T", "user_id": "u", "amount": 1000.0}).encode(),
        json.dumps({"order_no": "X", "tid": "T", "user_id": "u", "amount": True}).encode(),
        json.dumps({"order_no": "X", "tid": "T", "user_id": "u", "amount": -1000}).encode(),
        json.dumps({"order_no": "X", "tid": "T", "user_id": "u", "amount": 10**30}).encode(),
        json.dumps({"order_no": ["X"], "tid": "T", "user_id": "u", "amount": 1}).encode(),
        json.dumps({"tid": "T", "user_id": "u", "amount": 1000}).encode(),
        json.dumps({"order_no": "X\u0000", "tid": "T", "user_id": "u", "amount": 1}).encode(),
    ],
)
async def test_malformed_bodies_get_a_4xx_non_zero_answer_and_are_recorded(
    payletter_peer: httpx.AsyncClient, engine: AsyncEngine, content: bytes
) -> None:
    r = await payletter_peer.post("/payletter/callback", content=content,
                                  headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["code"] == 400 and r.json()["message"]
    assert await scalar(engine, "SELECT outcome FROM deliveries") == "rejected"
    assert await scalar(engine, "SELECT count(*) FROM orders") == 0


async def test_an_oversized_body_is_refused_before_reading(
    payletter_peer: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    r = await payletter_peer.post("/payletter/callback", content=b"{" + b" " * 70_000 + b"}",
                                  headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == 413
    assert await deliveries(engine) == 0


async def test_a_failed_commit_is_never_acknowledged_and_the_redelivery_applies(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = await create_order(shop)
    body = callback_body(order)
    fail_next_commit(monkeypatch, engine)
    r = await payletter_peer.post("/payletter/callback", json=body)
    assert r.json()["code"] == 503
    assert (await order_state(shop, order["order_no"]))["status"] == "pending"
    # The delivery itself was recorded in a transaction of its own.
    assert await scalar(engine, "SELECT outcome FROM deliveries") == "error"

    again = await payletter_peer.post("/payletter/callback", json=body)
    assert again.json() == ACK
    assert (await order_state(shop, order["order_no"]))["status"] == "paid"


async def test_the_vendor_example_byte_for_byte_verifies_with_the_public_test_key(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient
) -> None:
    """The sample on Payletter's page, its own payhash untouched, against a matching order."""
    from tests.payletter_vectors import VENDOR_CALLBACK_EXAMPLE

    await create_order(shop, order_no="1234567890", pgcode="mobile", amount=1000,
                       taxfree_amount=100, tax_amount=20, user_id="test_user_id")
    r = await payletter_peer.post("/payletter/callback", json=VENDOR_CALLBACK_EXAMPLE)
    assert r.json() == ACK
    assert (await order_state(shop, "1234567890"))["status"] == "paid"


async def test_a_deposit_callback_without_payhash_pays_the_awaiting_account(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    """What happened is what Payletter confirms (5 = money in), not which fields came."""
    order = await create_order(shop, pgcode="virtualaccount", amount=5000)
    tid = f"tpay_test-{order['order_no']}"
    account = {"account_no": "56211234567890", "bank_name": "국민은행", "bank_code": "004",
               "expire_date": "20261231", "expire_time": "2359", "issue_tid": "ISS-1"}
    issued = return_fields(order, tid=tid) | account
    del issued["payhash"]
    fake_payletter.statuses[order["order_no"]] = {"token": "1", "tid": tid, "status_code": 3}
    sent = sent_request(fake_payletter, order["order_no"])
    await browser.post(path_of(sent["return_url"]), data=issued)
    assert (await order_state(shop, order["order_no"]))["status"] == "awaiting_deposit"

    deposit = callback_body(order, tid=tid) | account
    del deposit["payhash"]
    fake_payletter.statuses[order["order_no"]]["status_code"] = 5
    assert (await payletter_peer.post("/payletter/callback", json=deposit)).json() == ACK
    assert (await order_state(shop, order["order_no"]))["status"] == "paid"
    assert await applications(engine, order["order_no"]) == 1


async def test_a_form_encoded_callback_is_read_and_applied(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    order = await create_order(shop)
    body = {k: v for k, v in callback_body(order).items() if not isinstance(v, dict)}
    r = await payletter_peer.post("/payletter/callback", data={k: str(v) for k, v in
                                                               body.items()})
    assert r.json() == ACK
    assert (await order_state(shop, order["order_no"]))["status"] == "paid"
    # JSON stays the documented form, also when the header is off
    other = await create_order(shop)
    r = await payletter_peer.post("/payletter/callback", content=json.dumps(
        callback_body(other)), headers={"content-type": "text/plain"})
    assert r.json() == ACK
