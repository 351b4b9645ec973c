"""What an anonymous caller can learn (issue 15, item 10): an order only through its signed
result link."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.security import sign_link
from app.settings import PUBLIC_TEST_MERCHANT
from tests.conftest import client_for, make_settings, running
from tests.factories import callback_body, create_order, path_of, return_fields, sent_request
from tests.fake_payletter import FakePayletter

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
        page = await browser.get(location.removeprefix("http://gateway.test"))
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
