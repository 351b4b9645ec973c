"""POST /orders and GET /orders/{order_no}: validation, idempotency, Payletter failures, auth."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.security import sign_link
from tests.factories import create_order, link_query, order_body, sent_request
from tests.fake_payletter import FakePayletter
from tests.payletter_vectors import PAY_TEST_PAYMENT_KEY
from tests.support import scalar


async def count_orders(engine: AsyncEngine) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM orders"))


async def test_an_order_is_stored_and_its_payment_window_returned(
    shop: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    r = await shop.post("/orders", json=order_body(order_no="A1", amount=15000,
                                                   taxfree_amount=1000))
    assert r.status_code == 201
    order = r.json()
    assert order["order_no"] == "A1"
    assert order["status"] == "pending"
    assert order["token"] and order["online_url"].endswith("location=online")
    assert order["mobile_url"].endswith("location=mobile")
    assert order["tax_amount"] == 1273  # (15000-1000)/11 = 1272.7 → rounded half up
    sent = sent_request(fake_payletter, "A1")
    assert sent["client_id"] == "pay_test"
    assert sent["callback_url"] == "http://gateway.localhost/payletter/callback"
    assert sent["return_url"].startswith("http://gateway.localhost/payletter/return?")
    assert link_query(sent["return_url"])["sig"] == sign_link(PAY_TEST_PAYMENT_KEY, "return", "A1")
    assert sent["cancel_url"].startswith("http://gateway.localhost/payletter/cancel?")
    _, _, headers = fake_payletter.calls[0]
    assert headers["authorization"] == f"PLKEY {PAY_TEST_PAYMENT_KEY}"


async def test_order_no_is_generated_when_absent(shop: httpx.AsyncClient) -> None:
    order = await create_order(shop, order_no=None)
    assert order["order_no"].startswith("PL") and len(order["order_no"]) <= 40


async def test_get_order_shows_its_fields_and_deliveries(shop: httpx.AsyncClient) -> None:
    order = await create_order(shop)
    r = await shop.get(f"/orders/{order['order_no']}")
    assert r.status_code == 200
    body = r.json()
    assert body["order_no"] == order["order_no"] and body["amount"] == 1000
    assert body["deliveries"] == []
    assert [t["to_status"] for t in body["transitions"]] == ["pending"]


async def test_unknown_order_is_404_json(shop: httpx.AsyncClient) -> None:
    r = await shop.get("/orders/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"product_name": "<script>alert(1)</script>"}, "product_name"),
        ({"product_name": "line\nbreak"}, "product_name"),
        ({"product_name": "x" * 121}, "product_name"),
        ({"amount": 99}, "amount"),  # creditcard minimum is 100
        ({"amount": 1000.0}, "amount"),
        ({"amount": "1000"}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"pgcode": "bitcoin"}, "pgcode"),
        ({"pgcode": "ssgpay"}, "service_name"),
        ({"user_id": "u" * 51}, "user_id"),
        ({"order_no": "has space"}, "order_no"),
        ({"taxfree_amount": 2000}, "taxfree_amount"),
        ({"return_url": "https://evil.example/steal"}, "return_url"),
        ({"client_id": "someone_else"}, "client_id"),
        ({"email_flag": "maybe"}, "email_flag"),
    ],
)
async def test_bad_order_terms_get_422_naming_the_field_and_change_nothing(
    shop: httpx.AsyncClient, engine: AsyncEngine, fake_payletter: FakePayletter,
    overrides: dict[str, Any], field: str,
) -> None:
    r = await shop.post("/orders", json=order_body(**overrides))
    assert r.status_code == 422, r.text
    assert field in r.text
    assert r.json()["error"]["message"]
    assert await count_orders(engine) == 0
    assert fake_payletter.calls == []


async def test_non_json_body_is_a_clear_4xx(shop: httpx.AsyncClient, engine: AsyncEngine) -> None:
    r = await shop.post("/orders", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert await count_orders(engine) == 0


async def test_a_taken_order_no_is_a_conflict(shop: httpx.AsyncClient) -> None:
    await create_order(shop, order_no="DUP1")
    r = await shop.post("/orders", json=order_body(order_no="DUP1", amount=5000))
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "order_no"


async def test_the_same_idempotency_key_twice_makes_one_order_and_one_payletter_call(
    shop: httpx.AsyncClient, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    body = order_body(order_no=None)
    first = await shop.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})
    second = await shop.post("/orders", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await count_orders(engine) == 1
    assert len(fake_payletter.calls_to("v1.0/payments/request")) == 1


async def test_an_idempotency_key_reused_with_another_body_is_refused(
    shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await shop.post("/orders", json=order_body(order_no=None), headers={"Idempotency-Key": "k-2"})
    r = await shop.post("/orders", json=order_body(order_no=None, amount=2000),
                        headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["error"]["message"]
    assert await count_orders(engine) == 1


async def test_payletter_refusal_leaves_a_failed_order_that_is_not_payable(
    shop: httpx.AsyncClient, fake_payletter: FakePayletter
) -> None:
    fake_payletter.failures["v1.0/payments/request"] = (
        406, {"code": 2004, "message": "amount below minimum"})
    r = await shop.post("/orders", json=order_body(order_no="R406"))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["type"] == "payletter_refused" and "amount below minimum" in error["message"]
    order = (await shop.get("/orders/R406")).json()
    assert order["status"] == "failed"
    assert order["online_url"] is None and order["token"] is None
    assert "2004" in order["last_error"]


@pytest.mark.parametrize(
    ("status", "payload"),
    [(500, {"error": {"code": 999, "message": "Internal server error"}}),
     (500, {"code": 999, "message": "Internal server error"}),
     (401, {"code": 998, "message": "Authentication token is missing or incorrect."})],
)
async def test_payletter_errors_are_a_502_and_the_order_stays_unpayable(
    shop: httpx.AsyncClient, fake_payletter: FakePayletter, status: int, payload: dict[str, Any]
) -> None:
    fake_payletter.failures["v1.0/payments/request"] = (status, payload)
    r = await shop.post("/orders", json=order_body(order_no="R5"))
    assert r.status_code == 502
    assert r.json()["error"]["order_no"] == "R5"
    order = (await shop.get("/orders/R5")).json()
    assert order["status"] == "created" and order["online_url"] is None


async def test_a_payletter_timeout_is_a_504_and_the_same_request_resumes_the_order(
    shop: httpx.AsyncClient, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    fake_payletter.failures["v1.0/payments/request"] = httpx.ReadTimeout("slow")
    body = order_body(order_no="SLOW1")
    r = await shop.post("/orders", json=body, headers={"Idempotency-Key": "slow-1"})
    assert r.status_code == 504
    assert (await shop.get("/orders/SLOW1")).json()["status"] == "created"

    del fake_payletter.failures["v1.0/payments/request"]
    retry = await shop.post("/orders", json=body, headers={"Idempotency-Key": "slow-1"})
    assert retry.status_code == 201
    assert retry.json()["status"] == "pending"
    assert await count_orders(engine) == 1


async def test_a_retry_after_a_timeout_continues_the_same_generated_order(
    shop: httpx.AsyncClient, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    fake_payletter.failures["v1.0/payments/request"] = httpx.ReadTimeout("slow")
    body = order_body(order_no=None)
    first = await shop.post("/orders", json=body, headers={"Idempotency-Key": "gen-1"})
    assert first.status_code == 504
    order_no = first.json()["error"]["order_no"]
    del fake_payletter.failures["v1.0/payments/request"]
    retry = await shop.post("/orders", json=body, headers={"Idempotency-Key": "gen-1"})
    assert retry.status_code == 201
    assert retry.json()["order_no"] == order_no
    assert await count_orders(engine) == 1


async def test_a_key_held_by_a_crashed_request_is_taken_over_after_its_lease(
    shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    body = order_body(order_no=None)
    first = await shop.post("/orders", json=body, headers={"Idempotency-Key": "crash-1"})
    order_no = first.json()["order_no"]
    async with engine.begin() as conn:  # as if the holder died before finishing
        await conn.execute(text("UPDATE idempotency_keys SET response_status = NULL, "
                                "response_body = NULL, locked_until = :t"),
                           {"t": datetime.now(UTC) + timedelta(minutes=1)})
        await conn.execute(text("UPDATE orders SET status = 'created'"))
    busy = await shop.post("/orders", json=body, headers={"Idempotency-Key": "crash-1"})
    assert busy.status_code == 409
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET locked_until = :t"),
                           {"t": datetime.now(UTC) - timedelta(seconds=1)})
    taken = await shop.post("/orders", json=body, headers={"Idempotency-Key": "crash-1"})
    assert taken.status_code == 201
    assert taken.json()["order_no"] == order_no
    assert await count_orders(engine) == 1


async def test_no_token_is_401_and_a_wrong_token_is_403(gateway_app: Any) -> None:
    from tests.support import client_for

    async with client_for(gateway_app) as anonymous:
        r = await anonymous.post("/orders", json=order_body())
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert (await anonymous.get("/orders/x")).status_code == 401
    async with client_for(gateway_app, authorization="Bearer wrong") as wrong:
        assert (await wrong.post("/orders", json=order_body())).status_code == 403
        assert (await wrong.get("/orders/x")).status_code == 403


async def test_operators_read_orders_but_do_not_create_them(
    shop: httpx.AsyncClient, ops: httpx.AsyncClient
) -> None:
    order = await create_order(shop)
    assert (await ops.get(f"/orders/{order['order_no']}")).status_code == 200
    assert (await ops.post("/orders", json=order_body())).status_code == 403


async def test_during_a_rotation_the_old_and_the_new_token_both_work(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    from app.main import create_app
    from tests.support import client_for, make_settings, running

    settings = make_settings(database_url, shop_api_token="shop-new-token,shop-old-token",
                             ops_api_token="ops-new-token,ops-old-token")
    async with running(create_app(settings, fake_payletter.transport)) as app:
        for token in ("shop-new-token", "shop-old-token"):
            async with client_for(app, authorization=f"Bearer {token}") as shop:
                assert (await shop.post("/orders", json=order_body())).status_code == 201
        for token in ("ops-new-token", "ops-old-token"):
            async with client_for(app, authorization=f"Bearer {token}") as ops:
                assert (await ops.get("/orders")).status_code == 200
                assert (await ops.post("/orders", json=order_body())).status_code == 403
        async with client_for(app, authorization="Bearer shop-new-token,shop-old-token") as x:
            assert (await x.get("/orders")).status_code == 403


async def test_a_window_for_an_order_a_result_already_moved_keeps_that_state(
    database_url: str, engine: AsyncEngine
) -> None:
    """Payletter's payments/request answers after a verified result paid the order (the
    result can overtake the answer): the window is stored, the order stays paid, and no
    `created → pending` move is written over it."""
    from sqlalchemy import text

    from app.main import create_app
    from tests.support import client_for, make_settings, running

    fake = FakePayletter()

    async def paid_meanwhile(request: httpx.Request) -> httpx.Response:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE orders SET status = 'paid', tid = 'T-1'"))
        return fake.transport.handle_request(request)

    app = create_app(make_settings(database_url),
                     payletter_transport=httpx.MockTransport(paid_meanwhile))
    async with running(app), client_for(app, authorization="Bearer shop-token-for-tests") as c:
        r = await c.post("/orders", json=order_body(order_no="RACE1"))
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "paid" and r.json()["token"]
        stored = (await c.get("/orders/RACE1")).json()
    assert stored["status"] == "paid" and stored["token"] == r.json()["token"]
    assert stored["transitions"] == []
