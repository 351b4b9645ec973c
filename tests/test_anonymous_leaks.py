"""What an anonymous caller can learn (issue 15, item 10): an order only through its signed
result link, /metrics cheaply (and behind METRICS_TOKEN when set), the API docs only in
sim or with API_DOCS=true."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.security import sign_link
from app.main import create_app
from app.orders.repository import OrderRepository
from app.settings import PUBLIC_TEST_MERCHANT
from tests.factories import callback_body, create_order, path_of, return_fields, sent_request
from tests.fake_payletter import FakePayletter
from tests.support import client_for, make_settings, running

KEY = PUBLIC_TEST_MERCHANT["payment_key"]  # pay_test's PAYMENT key signs its links
NOT_FOUND = "We could not find this order."


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def result_path(order_no: str, sig: str | None) -> str:
    params = {"order_no": order_no} | ({"sig": sig} if sig is not None else {})
    return f"/payletter/result?{urlencode(params)}"


def shows_nothing_of(page: httpx.Response, order: dict[str, Any]) -> None:
    assert page.status_code == 200 and NOT_FOUND in page.text
    for secret in (order["product_name"], f"{order['amount']:,} won", "order-status"):
        assert secret not in page.text


# ---- (a) the result page ------------------------------------------------------------------


async def test_the_result_page_shows_an_order_only_with_its_result_signature(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
) -> None:
    order = await create_order(shop, product_name="Secret beans", amount=4321)
    other = await create_order(shop)
    await payletter_peer.post("/payletter/callback", json=callback_body(order))
    no = order["order_no"]
    for sig in (None, "", "0" * 32, "not-hex-at-all", sign_link(KEY, "return", no),
                sign_link(KEY, "cancel", no), sign_link(KEY, "result", other["order_no"]),
                sign_link("another-key", "result", no)):
        shows_nothing_of(await browser.get(result_path(no, sig)), order)
    page = await browser.get(result_path(no, sign_link(KEY, "result", no)))
    assert "id='order-status'>paid<" in page.text and "Secret beans: 4,321 won" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"  # the link never leaves


async def test_the_redirect_after_a_return_or_cancel_is_a_signed_link_that_opens_the_page(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter,
) -> None:
    paid, left = await create_order(shop), await create_order(shop)
    r = await browser.post(path_of(sent_request(fake_payletter, paid["order_no"])["return_url"]),
                           data=fake_payletter.confirms(return_fields(paid)))
    r2 = await browser.get(path_of(sent_request(fake_payletter, left["order_no"])["cancel_url"]))
    for response, order, status in ((r, paid, "paid"), (r2, left, "abandoned")):
        location = response.headers["location"]
        assert query(location) == {"order_no": order["order_no"], "status": status,
                                   "outcome": "applied",
                                   "sig": sign_link(KEY, "result", order["order_no"])}
        page = await browser.get(location.removeprefix("http://gateway.localhost"))
        assert f"id='order-status'>{status}<" in page.text


async def test_a_forged_return_or_cancel_link_learns_neither_status_nor_a_signature(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient,
) -> None:
    order = await create_order(shop)
    link = urlencode({"order_no": order["order_no"], "sig": "0" * 32})
    for r in (await browser.post(f"/payletter/return?{link}", data=return_fields(order)),
              await browser.get(f"/payletter/cancel?{link}"),
              await browser.get(f"/payletter/cancel?order_no={order['order_no']}")):
        assert query(r.headers["location"]) == {"order_no": order["order_no"],
                                                "outcome": "rejected"}


async def test_the_shop_s_own_result_page_gets_the_signature_too(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter,
) -> None:
    settings = make_settings(database_url, shop_result_url="https://shop.test/done?from=pay")
    app = create_app(settings, payletter_transport=fake_payletter.transport)
    async with running(app), client_for(
            app, authorization="Bearer shop-token-for-tests") as shop, client_for(
            app, peer="203.0.113.7") as browser:
        order = await create_order(shop)
        cancel_url = sent_request(fake_payletter, order["order_no"])["cancel_url"]
        location = (await browser.get(path_of(cancel_url))).headers["location"]
    assert location.startswith("https://shop.test/done?from=pay&order_no=")
    assert query(location) == {"from": "pay", "order_no": order["order_no"],
                               "status": "abandoned", "outcome": "applied",
                               "sig": sign_link(KEY, "result", order["order_no"])}


# ---- (b) /metrics -------------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per GROUP BY over orders."""
    calls: list[int] = []
    count = OrderRepository.count_by_status

    async def counting(self: OrderRepository) -> dict[str, int]:
        calls.append(1)
        return await count(self)

    monkeypatch.setattr(OrderRepository, "count_by_status", counting)
    return calls


async def test_a_flood_of_scrapes_counts_the_orders_once_per_interval(
    gateway_app: FastAPI, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    counted: list[int],
) -> None:
    order = await create_order(shop)
    async with client_for(gateway_app, peer="198.51.100.9") as anonymous:
        scrapes = await asyncio.gather(*(anonymous.get("/metrics") for _ in range(50)))
        assert all(r.status_code == 200 for r in scrapes)
        assert all('gateway_orders{status="pending"} 1.0' in r.text for r in scrapes)
        assert len(counted) == 1
        await payletter_peer.post("/payletter/callback", json=callback_body(order))
        assert 'gateway_orders{status="pending"} 1.0' in (await anonymous.get("/metrics")).text
        assert len(counted) == 1  # still within the interval: the counts of the last query
        counts = gateway_app.state.order_counts
        now = counts.clock()
        counts.clock = lambda: now + counts.interval  # the interval is over
        fresh = (await anonymous.get("/metrics")).text
        assert 'gateway_orders{status="paid"} 1.0' in fresh
        assert 'gateway_orders{status="pending"} 0.0' in fresh
        assert len(counted) == 2


@pytest.fixture
async def guarded_metrics(database_url: str, engine: AsyncEngine,
                          fake_payletter: FakePayletter) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, metrics_token="metrics-token-for-tests"),
                     payletter_transport=fake_payletter.transport)
    async with running(app):
        yield app


async def test_metrics_take_the_metrics_token_when_one_is_set(guarded_metrics: FastAPI) -> None:
    async with client_for(guarded_metrics) as anonymous:
        r = await anonymous.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "unauthorized"
        for token in ("wrong", "shop-token-for-tests", "ops-token-for-tests"):
            r = await anonymous.get("/metrics", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 403 and "gateway_" not in r.text, token
        r = await anonymous.get("/metrics",
                                headers={"authorization": "Bearer metrics-token-for-tests"})
        assert r.status_code == 200 and "gateway_orders{" in r.text


async def test_metrics_stay_open_without_a_metrics_token(gateway_app: FastAPI) -> None:
    async with client_for(gateway_app) as anonymous:
        r = await anonymous.get("/metrics")
    assert r.status_code == 200 and "gateway_deliveries_total" in r.text


# ---- (c) the API docs ---------------------------------------------------------------------


DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.mark.parametrize(("env", "api_docs", "served"), [
    ("sim", None, True), ("sim", False, False),
    ("test", None, False), ("test", True, True), ("live", None, False)])
async def test_the_api_docs_are_served_in_sim_or_with_api_docs_only(
    database_url: str, env: str, api_docs: bool | None, served: bool
) -> None:
    overrides: dict[str, Any] = {"payletter_env": env}
    if env != "sim":  # outside sim tokens have 32+ characters
        overrides |= {"shop_api_token": "shop-token-for-the-docs-test-000001",
                      "ops_api_token": "ops-token-for-the-docs-test-0000001"}
    if env == "live":
        overrides |= {"payletter_client_id": "shop_live1",
                      "payletter_payment_key": "UExLRVktUEFZTUVOVC1zM2NyM3Q=",
                      "payletter_search_key": "UExLRVktU0VBUkNILXMzY3IzdA=="}
    if api_docs is not None:
        overrides["api_docs"] = api_docs
    app = create_app(make_settings(database_url, **overrides))
    async with client_for(app) as anonymous:
        for path in DOCS:
            r = await anonymous.get(path)
            assert r.status_code == (200 if served else 404), (path, r.status_code)
