"""The buyer's return, the cancel page, and results that carry no payhash."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import TRUNCATED_DELIVERIES
from app.orders.repository import OrderRepository
from tests.factories import (
    callback_body,
    create_order,
    path_of,
    result_query,
    return_fields,
    sent_request,
)
from tests.fake_payletter import FakePayletter
from tests.support import scalar

ACK = {"code": 0, "message": ""}


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("http://gateway.localhost/payletter/result?")
    return result_query(location)


async def status_of(shop: httpx.AsyncClient, order_no: str) -> str:
    status: str = (await shop.get(f"/orders/{order_no}")).json()["status"]
    return status


async def urls(fake: FakePayletter, order: dict[str, Any]) -> tuple[str, str]:
    sent = sent_request(fake, order["order_no"])
    return path_of(sent["return_url"]), path_of(sent["cancel_url"])


async def test_a_verified_form_return_pays_the_order_and_redirects_to_the_result(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    r = await browser.post(return_url, data=fake_payletter.confirms(return_fields(order)))
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "paid",
                                 "outcome": "applied"}
    assert await status_of(shop, order["order_no"]) == "paid"
    page = await browser.get(r.headers["location"].removeprefix("http://gateway.localhost"))
    assert "paid" in page.text and order["order_no"] in page.text


async def test_a_json_return_is_accepted_too(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    r = await browser.post(return_url, json=fake_payletter.confirms(return_fields(order)))
    assert redirect_query(r)["status"] == "paid"


async def test_callback_then_return_and_return_then_callback_apply_once(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    first, second = await create_order(shop), await create_order(shop)
    # callback, then the browser's return
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(first))
            ).json() == ACK
    r = await browser.post((await urls(fake_payletter, first))[0], data=return_fields(first))
    assert redirect_query(r) == {"order_no": first["order_no"], "status": "paid",
                                 "outcome": "duplicate"}
    # return, then the callback
    r = await browser.post((await urls(fake_payletter, second))[0],
                           data=fake_payletter.confirms(return_fields(second)))
    assert redirect_query(r)["outcome"] == "applied"
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(second))
            ).json() == ACK
    paid_transitions = await scalar(
        engine, "SELECT count(*) FROM order_transitions WHERE to_status = 'paid'")
    assert paid_transitions == 2
    kinds = await scalar(engine, "SELECT count(DISTINCT kind) FROM deliveries")
    assert kinds == 2


async def test_a_return_is_applied_only_once_payletter_confirms_its_tid_for_this_order(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    """A return's payhash doesn't name the order: payments/status must, before we apply."""
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    result = return_fields(order)
    # Payletter unreachable: the buyer is told it's pending, nothing is applied.
    fake_payletter.failures["v1.0/payments/status"] = httpx.ConnectError("down")
    r = await browser.post(return_url, data=result)
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "pending",
                                 "outcome": "error"}
    # Payletter answers with another tid for this order, or a status that isn't paid.
    del fake_payletter.failures["v1.0/payments/status"]
    for tid, code in ((result["tid"] + "x", 4), (result["tid"], 1)):
        fake_payletter.statuses[order["order_no"]] = {"token": "1", "tid": tid,
                                                      "status_code": code}
        r = await browser.post(return_url, data=result)
        assert redirect_query(r)["outcome"] == "rejected"
    assert await status_of(shop, order["order_no"]) == "pending"
    # The callback (from Payletter's address, payhash verified) needs no question.
    asked = len(fake_payletter.calls_to("v1.0/payments/status"))
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(order))
            ).json() == ACK
    # A repeat of the tid the order holds is a duplicate, answered without asking.
    r = await browser.post(return_url, data=result)
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "paid",
                                 "outcome": "duplicate"}
    assert len(fake_payletter.calls_to("v1.0/payments/status")) == asked
    assert await scalar(engine, "SELECT count(*) FROM order_transitions "
                                "WHERE to_status = 'paid'") == 1


async def test_a_repeat_answered_without_payletter_must_still_be_a_repeat_under_the_lock(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reload of an applied return skips payments/status; if the order is no longer
    holding that tid when it is locked, the return must not be applied on its payhash."""
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(order))
            ).json() == ACK
    lock = OrderRepository.lock_for_result

    async def changed_meanwhile(self: OrderRepository, order_no: str, tid: str) -> Any:
        # Between the unlocked read and the lock (in the same transaction: SQLite's
        # BEGIN IMMEDIATE would keep any other writer out).
        await self.session.execute(text("UPDATE orders SET status = 'pending', tid = NULL "
                                        "WHERE order_no = :no"), {"no": order_no})
        return await lock(self, order_no, tid)

    monkeypatch.setattr(OrderRepository, "lock_for_result", changed_meanwhile)
    asked = len(fake_payletter.calls_to("v1.0/payments/status"))
    r = await browser.post(return_url, data=return_fields(order))
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "pending",
                                 "outcome": "error"}
    assert len(fake_payletter.calls_to("v1.0/payments/status")) == asked  # not asked
    assert await status_of(shop, order["order_no"]) == "pending"


async def test_a_return_without_the_signed_link_is_refused(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    for path in ("/payletter/return",
                 f"/payletter/return?order_no={order['order_no']}&sig=00000000"):
        r = await browser.post(path, data=return_fields(order))
        assert redirect_query(r)["outcome"] == "rejected"
    assert await status_of(shop, order["order_no"]) == "pending"
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE "
                                "verification = 'signature_bad'") == 2


async def test_another_order_s_valid_result_replayed_on_this_return_is_refused(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    """payhash covers user_id+amount+tid but not order_no: the signed URL closes the gap."""
    paid, victim = await create_order(shop), await create_order(shop)
    paid_return, _ = await urls(fake_payletter, paid)
    r = await browser.post(paid_return, data=fake_payletter.confirms(return_fields(paid)))
    assert redirect_query(r)["outcome"] == "applied"
    stolen = return_fields(paid) | {"order_no": victim["order_no"]}
    victim_return, _ = await urls(fake_payletter, victim)
    for path in (paid_return, victim_return):
        r = await browser.post(path, data=stolen)
        assert redirect_query(r).get("status") != "paid" or r.headers["location"].find(
            victim["order_no"]) == -1
    assert await status_of(shop, victim["order_no"]) != "paid"


async def test_a_declined_return_fails_the_order_and_a_later_success_still_wins(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter,
) -> None:
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    declined = {"code": "1001", "message": "card declined", "order_no": order["order_no"],
                "user_id": order["user_id"]}
    r = await browser.post(return_url, data=declined)
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "failed",
                                 "outcome": "applied"}
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(order))
            ).json() == ACK
    assert await status_of(shop, order["order_no"]) == "paid"


async def test_the_cancel_page_abandons_a_pending_order_only_through_its_signed_link(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    order = await create_order(shop)
    _, cancel_url = await urls(fake_payletter, order)
    forged = await browser.get(f"/payletter/cancel?{urlencode({'order_no': order['order_no']})}")
    assert redirect_query(forged)["outcome"] == "rejected"
    assert await status_of(shop, order["order_no"]) == "pending"
    r = await browser.get(cancel_url)
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "abandoned",
                                 "outcome": "applied"}
    again = await browser.post(cancel_url, data={})
    assert redirect_query(again)["outcome"] == "ignored"


async def test_a_virtual_account_is_confirmed_with_payletter_then_paid_on_deposit(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter,
) -> None:
    order = await create_order(shop, pgcode="virtualaccount", amount=5000)
    tid = f"tpay_test-{order['order_no']}"
    issued = return_fields(order, tid=tid) | {
        "account_no": "56211234567890", "bank_name": "국민은행", "bank_code": "004",
        "expire_date": "20261231", "expire_time": "2359", "issue_tid": "ISS-1"}
    del issued["payhash"]  # virtual-account returns carry none
    return_url, _ = await urls(fake_payletter, order)

    # Payletter doesn't know the payment (yet): nothing changes.
    r = await browser.post(return_url, data=issued)
    assert redirect_query(r)["outcome"] == "rejected"
    assert await status_of(shop, order["order_no"]) == "pending"

    fake_payletter.statuses[order["order_no"]] = {"token": "1", "tid": tid, "status_code": 4}
    r = await browser.post(return_url, data=issued)
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "awaiting_deposit",
                                 "outcome": "applied"}
    details = (await shop.get(f"/orders/{order['order_no']}")).json()["payment_details"]
    assert details["virtual_account"]["account_no"] == "56211234567890"

    # The deposit callback carries a payhash: verified, paid.
    deposit = callback_body(order, tid=tid)
    assert (await payletter_peer.post("/payletter/callback", json=deposit)).json() == ACK
    assert await status_of(shop, order["order_no"]) == "paid"


async def test_a_result_without_payhash_is_not_trusted_when_payletter_is_unreachable(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    order = await create_order(shop, pgcode="virtualaccount", amount=5000)
    body = callback_body(order)
    del body["payhash"]
    fake_payletter.failures["v1.0/payments/status"] = httpx.ConnectError("down")
    r = await payletter_peer.post("/payletter/callback", json=body)
    assert r.json()["code"] == 503
    assert await status_of(shop, order["order_no"]) == "pending"
    # Payletter is back and says "done" for this tid: the redelivery applies.
    del fake_payletter.failures["v1.0/payments/status"]
    fake_payletter.statuses[order["order_no"]] = {"token": "1", "tid": body["tid"],
                                                  "status_code": 5}
    assert (await payletter_peer.post("/payletter/callback", json=body)).json() == ACK
    assert await status_of(shop, order["order_no"]) == "paid"


async def test_an_euc_kr_form_return_is_read_correctly(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    order = await create_order(shop, user_name="테스터")
    return_url, _ = await urls(fake_payletter, order)
    body = urlencode(fake_payletter.confirms(return_fields(order)), encoding="cp949")
    r = await browser.post(return_url, content=body.encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert redirect_query(r)["status"] == "paid"


async def test_a_return_with_garbage_gets_a_clear_4xx(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter,
    engine: AsyncEngine,
) -> None:
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    r = await browser.post(return_url, content=b"\xff\xfe\x00garbage",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json()["error"]["message"]
    assert await status_of(shop, order["order_no"]) == "pending"
    assert await scalar(engine, "SELECT outcome FROM deliveries") == "rejected"


async def test_a_card_return_stripped_of_its_payhash_changes_nothing(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter,
) -> None:
    """Card results carry a payhash: one without it is the buyer's edit, and the amount in
    it must not send the order to review and lock out the genuine callback."""
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    edited = fake_payletter.confirms(return_fields(order)) | {"amount": "100"}
    del edited["payhash"]
    r = await browser.post(return_url, data=edited)
    assert redirect_query(r) == {"order_no": order["order_no"], "status": "pending",
                                 "outcome": "rejected"}
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(order))
            ).json() == ACK
    assert await status_of(shop, order["order_no"]) == "paid"


async def test_account_fields_on_a_card_return_are_refused(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter,
) -> None:
    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    account = {"account_no": "56211234567890", "bank_name": "국민은행"}
    with_payhash = fake_payletter.confirms(return_fields(order)) | account
    without = {k: v for k, v in with_payhash.items() if k != "payhash"}
    for edited in (without, with_payhash):
        r = await browser.post(return_url, data=edited)
        assert redirect_query(r)["outcome"] == "rejected"
        assert await status_of(shop, order["order_no"]) == "pending"
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(order))
            ).json() == ACK
    detail = (await shop.get(f"/orders/{order['order_no']}")).json()
    assert detail["status"] == "paid" and "virtual_account" not in detail["payment_details"]


async def test_a_virtual_account_return_takes_amount_and_method_from_payletter_not_the_body(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter,
) -> None:
    order = await create_order(shop, pgcode="virtualaccount", amount=5000)
    tid = f"tpay_test-{order['order_no']}"
    issued = return_fields(order, tid=tid) | {
        "account_no": "56211234567890", "bank_name": "국민은행", "amount": "100",
        "pgcode": "creditcard", "user_id": "someone-else"}
    del issued["payhash"]
    fake_payletter.statuses[order["order_no"]] = {"token": "1", "tid": tid, "status_code": 3}
    return_url, _ = await urls(fake_payletter, order)
    r = await browser.post(return_url, data=issued)
    assert redirect_query(r)["status"] == "awaiting_deposit"
    detail = (await shop.get(f"/orders/{order['order_no']}")).json()
    assert (detail["amount"], detail["paid_pgcode"]) == (5000, "virtualaccount")
    deposit = callback_body(order, tid=tid)
    del deposit["payhash"]
    fake_payletter.statuses[order["order_no"]]["status_code"] = 5
    assert (await payletter_peer.post("/payletter/callback", json=deposit)).json() == ACK
    assert await status_of(shop, order["order_no"]) == "paid"


async def test_anonymous_browser_posts_are_stored_as_a_head_size_and_digest(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter,
    engine: AsyncEngine,
) -> None:
    """Strangers can't fill the disk through return/cancel; deliveries on our signed links
    stay whole (they are evidence)."""
    big = b"x=" + b"a" * 60_000
    before = TRUNCATED_DELIVERIES.labels(kind="return")._value.get()
    for path in ("/payletter/return?order_no=nope&sig=bad", "/payletter/cancel?sig=bad"):
        for _ in range(100):
            r = await browser.post(path, content=big,
                                   headers={"content-type": "application/x-www-form-urlencoded"})
            assert r.status_code in (303, 400)
    rows = (await _rows(engine, "SELECT length(raw_body), body_bytes, body_sha256 "
                                "FROM deliveries"))
    assert len(rows) == 200
    assert sum(row[0] for row in rows) <= 200 * 1024  # was 200 × 60,002
    assert {(row[1], row[2]) for row in rows} == {(len(big), hashlib.sha256(big).hexdigest())}
    assert TRUNCATED_DELIVERIES.labels(kind="return")._value.get() - before == 100

    order = await create_order(shop)
    return_url, _ = await urls(fake_payletter, order)
    signed = fake_payletter.confirms(return_fields(order)) | {"padding": "p" * 60_000}
    await browser.post(return_url, data=signed)
    stored = await scalar(engine, "SELECT raw_body FROM deliveries WHERE order_no = :no",
                          no=order["order_no"])
    assert stored == urlencode(signed)


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())
