"""Orders from the shop's frontend: signed intents and CORS on POST /orders only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.orders.intents import IntentError, sign_intent, verify_intent
from tests.fake_payletter import FakePayletter
from tests.support import client_for, make_settings, running, scalar

SECRET = "shop-intent-secret-0123456789abcdef"
SHOP_SITE = "https://shop.example"
# PAYLETTER_ENV=test takes only tokens of 32+ characters.
TEST_ENV_TOKENS = {"shop_api_token": "shop-token-for-tests-0123456789abcdef",
                   "ops_api_token": "ops-token-for-tests-0123456789abcdef"}

# The published test vectors (docs/integration.md, "Two ways to create orders").
VECTORS = [
    ({"order_no": "ORDER-1001", "amount": 15000, "product_name": "원두 1kg",
      "user_id": "buyer42", "pgcodes": ["creditcard", "kakaopay"], "expires_at": 1893456000},
     "pli1.eyJhbW91bnQiOjE1MDAwLCJleHBpcmVzX2F0IjoxODkzNDU2MDAwLCJvcmRlcl9ubyI6Ik9SREVSLTEwMDEi"
     "LCJwZ2NvZGVzIjpbImNyZWRpdGNhcmQiLCJrYWthb3BheSJdLCJwcm9kdWN0X25hbWUiOiLsm5DrkZAgMWtnIiwi"
     "dXNlcl9pZCI6ImJ1eWVyNDIifQ.TFo14owoP4UI3DcTrvXo_wYWzxn5goO9DvhEVVD5VGo"),
    ({"order_no": "ORDER-1002", "amount": 8000, "taxfree_amount": 0,
      "product_name": "Green tea", "user_id": "buyer42", "pgcode": "creditcard",
      "expires_at": 1893456000},
     "pli1.eyJhbW91bnQiOjgwMDAsImV4cGlyZXNfYXQiOjE4OTM0NTYwMDAsIm9yZGVyX25vIjoiT1JERVItMTAwMiIs"
     "InBnY29kZSI6ImNyZWRpdGNhcmQiLCJwcm9kdWN0X25hbWUiOiJHcmVlbiB0ZWEiLCJ0YXhmcmVlX2Ftb3VudCI6"
     "MCwidXNlcl9pZCI6ImJ1eWVyNDIifQ.XMmhAkfJ--7yjnNf1tex73s_Q_XGoe1zApy9788F_uY"),
]


def from_scratch(secret: str, terms: dict[str, Any]) -> str:
    """The documented algorithm, written out independently of app.orders.intents."""
    payload = json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    b64 = base64.urlsafe_b64encode(payload.encode("utf-8")).decode().rstrip("=")
    signed = "pli1." + b64
    mac = hmac.new(secret.encode(), signed.encode("ascii"), hashlib.sha256).digest()
    return signed + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


@pytest.mark.parametrize(("terms", "token"), VECTORS)
def test_the_published_vectors_reproduce_with_the_helper_and_from_scratch(
    terms: dict[str, Any], token: str
) -> None:
    assert sign_intent(SECRET, terms) == token
    assert from_scratch(SECRET, terms) == token
    assert verify_intent(SECRET, token, now=1893456000 - 60) == terms


def terms(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"order_no": "INT-1", "amount": 15000, "product_name": "Coffee",
                            "user_id": "buyer42", "pgcodes": ["creditcard", "kakaopay"],
                            "expires_at": int(time.time()) + 600}
    base.update(overrides)
    return base


def tamper(token: str, **changes: Any) -> str:
    """Change the signed terms but keep the old signature (what a buyer would try)."""
    version, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{version}.{body}.{signature}"


@pytest.fixture
async def frontend(database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
                   ) -> AsyncIterator[FastAPI]:
    settings = make_settings(database_url, payletter_env="test",
                             payletter_base_url="http://payletter.test/",
                             shop_intent_secret=SECRET, shop_allowed_origins=SHOP_SITE,
                             **TEST_ENV_TOKENS)
    app = create_app(settings, fake_payletter.transport)
    async with running(app):
        yield app


async def post(app: FastAPI, body: Any, origin: str | None = SHOP_SITE,
               **headers: str) -> httpx.Response:
    async with client_for(app, peer="203.0.113.50") as browser:
        extra = {"origin": origin} if origin else {}
        return await browser.post("/orders", json=body, headers={**extra, **headers})


async def test_a_valid_intent_creates_the_order_without_a_token(
    frontend: FastAPI, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    r = await post(frontend, {"intent": sign_intent(SECRET, terms()), "pgcode": "kakaopay"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["order_no"], order["amount"], order["pgcode"]) == ("INT-1", 15000, "kakaopay")
    assert order["online_url"]
    assert r.headers["access-control-allow-origin"] == SHOP_SITE
    assert "access-control-allow-credentials" not in r.headers
    [sent] = fake_payletter.calls_to("v1.0/payments/request")
    assert sent["amount"] == 15000


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"intent": tamper(sign_intent(SECRET, terms()), amount=1), "pgcode": "creditcard"},
         "does not match"),
        ({"intent": tamper(sign_intent(SECRET, terms()), product_name="Gold bar"),
          "pgcode": "creditcard"}, "does not match"),
        ({"intent": tamper(sign_intent(SECRET, terms()), user_id="mallory"),
          "pgcode": "creditcard"}, "does not match"),
        ({"intent": tamper(sign_intent(SECRET, terms()), pgcodes=["mobile"]),
          "pgcode": "mobile"}, "does not match"),
        ({"intent": sign_intent(SECRET, terms()), "pgcode": "mobile"}, "not allowed"),
        ({"intent": sign_intent(SECRET, terms(pgcode="creditcard", pgcodes=None)),
          "pgcode": "kakaopay"}, "for pgcode"),
        ({"intent": sign_intent(SECRET, terms()), }, "choose a pgcode"),
        ({"intent": sign_intent(SECRET, terms(expires_at=int(time.time()) - 1)),
          "pgcode": "creditcard"}, "expired"),
        ({"intent": sign_intent(SECRET, terms(expires_at=int(time.time()) + 90000)),
          "pgcode": "creditcard"}, "24 hours"),
        ({"intent": sign_intent("another-secret-0123456789", terms()),
          "pgcode": "creditcard"}, "does not match"),
        ({"intent": sign_intent(SECRET, terms()).rsplit(".", 1)[0], "pgcode": "creditcard"},
         "not a signed order intent"),
        ({"intent": "", "pgcode": "creditcard"}, "intent"),
        ({"intent": sign_intent(SECRET, terms(price_override=1)), "pgcode": "creditcard"},
         "unknown terms"),
        ({"intent": sign_intent(SECRET, terms(amount=10)), "pgcode": "creditcard"},
         "at least 100"),
    ],
)
async def test_anything_altered_expired_or_unsigned_is_refused_and_changes_nothing(
    frontend: FastAPI, engine: AsyncEngine, fake_payletter: FakePayletter,
    body: dict[str, Any], reason: str,
) -> None:
    r = await post(frontend, body)
    assert 400 <= r.status_code < 500, r.text
    assert reason in r.json()["error"]["message"], r.text
    assert await scalar(engine, "SELECT count(*) FROM orders") == 0
    assert fake_payletter.calls == []


async def test_a_body_without_intent_or_token_is_401(frontend: FastAPI, engine: AsyncEngine
                                                     ) -> None:
    r = await post(frontend, {"pgcode": "creditcard", "amount": 100, "product_name": "x",
                              "user_id": "u"})
    assert r.status_code == 401
    assert await scalar(engine, "SELECT count(*) FROM orders") == 0


async def test_the_same_intent_twice_is_one_order(
    frontend: FastAPI, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    body = {"intent": sign_intent(SECRET, terms()), "pgcode": "creditcard"}
    first, second = await post(frontend, body), await post(frontend, body)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert await scalar(engine, "SELECT count(*) FROM orders") == 1
    assert len(fake_payletter.calls_to("v1.0/payments/request")) == 1
    other_choice = await post(frontend, body | {"pgcode": "kakaopay"})
    assert other_choice.status_code == 409
    assert "already used" in other_choice.json()["error"]["message"]


async def test_intents_are_refused_where_no_secret_is_configured(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    settings = make_settings(database_url, payletter_env="test", **TEST_ENV_TOKENS)
    async with running(create_app(settings, fake_payletter.transport)) as app:
        r = await post(app, {"intent": sign_intent(SECRET, terms()), "pgcode": "creditcard"})
    assert r.status_code == 403 and "SHOP_INTENT_SECRET" in r.json()["error"]["message"]


async def test_an_allowed_origin_gets_the_cors_headers_on_preflight_and_post(
    frontend: FastAPI,
) -> None:
    async with client_for(frontend, peer="203.0.113.50") as browser:
        preflight = await browser.options("/orders", headers={
            "origin": SHOP_SITE, "access-control-request-method": "POST",
            "access-control-request-headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SHOP_SITE
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers


@pytest.mark.parametrize("origin", ["https://evil.example", "http://shop.example",
                                    "https://shop.example.evil.example"])
async def test_any_other_origin_gets_no_cors_headers(frontend: FastAPI, origin: str) -> None:
    async with client_for(frontend, peer="203.0.113.50") as browser:
        preflight = await browser.options("/orders", headers={
            "origin": origin, "access-control-request-method": "POST"})
        post_answer = await browser.post(
            "/orders", json={"intent": sign_intent(SECRET, terms()), "pgcode": "creditcard"},
            headers={"origin": origin})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in post_answer.headers


async def test_cors_applies_to_post_orders_only(frontend: FastAPI) -> None:
    async with client_for(frontend, peer="203.0.113.50",
                          authorization=f"Bearer {TEST_ENV_TOKENS['ops_api_token']}"
                          ) as browser:
        listing = await browser.get("/orders/INT-1", headers={"origin": SHOP_SITE})
        health = await browser.get("/healthz", headers={"origin": SHOP_SITE})
        preflight = await browser.options("/webhooks/events", headers={
            "origin": SHOP_SITE, "access-control-request-method": "GET"})
    for response in (listing, health, preflight):
        assert "access-control-allow-origin" not in response.headers


def test_no_origins_are_allowed_by_default() -> None:
    assert make_settings("sqlite+aiosqlite:///unused.db").allowed_origins == ()


def test_the_verifier_refuses_an_intent_without_an_expiry() -> None:
    token = sign_intent(SECRET, {k: v for k, v in terms().items() if k != "expires_at"})
    with pytest.raises(IntentError, match="expires_at"):
        verify_intent(SECRET, token)


async def test_the_demo_shop_signs_catalogue_prices_and_the_browser_posts_the_intent(
    gateway_app: FastAPI, engine: AsyncEngine
) -> None:
    async with client_for(gateway_app, peer="203.0.113.50") as browser:
        page = await browser.get("/demo")
        assert "fetch('/orders'" in page.text and "id='product'" in page.text
        signed = await browser.post("/demo/intent", data={"product": "tea"})
        intent = signed.json()["intent"]
        created = await browser.post("/orders", json={"intent": intent, "pgcode": "kakaopay"})
        assert created.status_code == 201
        assert created.json()["amount"] == 8000  # the catalogue's price, not the page's
        no_js = await browser.post("/demo/orders", data={"product": "mug",
                                                         "pgcode": "creditcard"})
        assert no_js.status_code == 303 and "location=online" in no_js.headers["location"]
        unknown = await browser.post("/demo/intent", data={"product": "gold"})
        assert unknown.status_code == 422
    assert await scalar(engine, "SELECT count(*) FROM orders") == 2
