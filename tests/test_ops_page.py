"""The ops page: sign-in, sessions and CSRF, the order list, one order's timeline, the review
queue, the daily chart, the confirmed refund, and escaping of everything shown."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_sessionmaker, utcnow
from app.kit.korea_time import KST
from app.main import create_app
from app.models import AuditEntry, Delivery, OpsSession, Order, OrderTransition, OutboxEvent
from app.ops.endpoints import COOKIE, SECURITY_HEADERS
from app.ops.sessions import SESSION_SECONDS, read_session, session_cookie
from tests.sim_harness import SimGateway, sim_gateway
from tests.support import client_for, make_settings, running, scalar

OPS_TOKEN = "ops-token-for-tests"
SHOP_TOKEN = "shop-token-for-tests"


# -- helpers --------------------------------------------------------------------------------

async def sign_in(client: httpx.AsyncClient) -> None:
    r = await client.post("/ops/login", data={"token": OPS_TOKEN})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/ops"


@pytest.fixture
async def page_client(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with no session yet."""
    async with client_for(gateway_app, peer="198.51.100.4") as client:
        yield client


@pytest.fixture
async def signed_in(page_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await sign_in(page_client)
    return page_client


def csrf_of(page: str) -> str:
    found = re.search(r"name='csrf' value='([0-9a-f]+)'", page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def escaped(text: str) -> str:
    """`text` as the pages show it (the templates' autoescape)."""
    return str(escape(text))


def order_nos(page: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r"data-order-no='([^']*)'", page)]


def href_of(page: str, element_id: str) -> str | None:
    found = re.search(rf"<a href='([^']*)' id='{element_id}'>", page)
    return html.unescape(found.group(1)) if found else None


def hidden(page: str, name: str) -> str:
    found = re.search(rf"name='{name}' value='([^']*)'", page)
    assert found, f"no hidden {name}"
    return html.unescape(found.group(1))


async def add_orders(engine: AsyncEngine, *rows: dict[str, Any]) -> list[Order]:
    """Orders straight into the table, with whatever a test needs in them."""
    now = utcnow()
    orders = []
    async with create_sessionmaker(engine)() as session:
        for n, row in enumerate(rows):
            values: dict[str, Any] = dict(
                client_id="pay_test", pgcode="creditcard", status="pending", amount=1000,
                taxfree_amount=0, tax_amount=91, cancelled_amount=0, product_name="p",
                user_id="u1", request_options={}, payment_details={},
                created_at=now - timedelta(minutes=len(rows) - n),
                updated_at=now - timedelta(minutes=len(rows) - n))
            values.update(row)
            orders.append(Order(**values))
        session.add_all(orders)
        await session.commit()
    return orders


# -- signing in -----------------------------------------------------------------------------

async def test_signing_in_takes_the_ops_token_and_sets_a_session_cookie_without_it(
    page_client: httpx.AsyncClient,
) -> None:
    r = await page_client.get("/ops/orders/T1?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/ops/login?next=%2Fops%2Forders%2FT1%3Fx%3D1"
    form = await page_client.get("/ops/login")
    assert form.status_code == 200 and "name='token'" in form.text
    for header, value in SECURITY_HEADERS.items():
        assert form.headers[header] == value

    for wrong in ("nope", SHOP_TOKEN, "", OPS_TOKEN + "x"):
        refused = await page_client.post("/ops/login", data={"token": wrong})
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers
        assert "not the ops token" in refused.text

    r = await page_client.post("/ops/login", data={"token": OPS_TOKEN, "next": "/ops/review"})
    assert r.status_code == 303 and r.headers["location"] == "/ops/review"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Path=/ops", f"Max-Age={SESSION_SECONDS}", "SameSite=strict"):
        assert attribute in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is http here
    assert OPS_TOKEN not in cookie
    assert (await page_client.get("/ops")).status_code == 200


async def test_the_cookie_is_secure_behind_https(database_url: str, engine: AsyncEngine) -> None:
    app = create_app(make_settings(database_url, public_base_url="https://gateway.localhost"))
    async with running(app), client_for(app) as client:
        r = await client.post("/ops/login", data={"token": OPS_TOKEN})
        assert "Secure" in r.headers["set-cookie"]


async def test_a_session_lasts_as_long_as_its_token_is_accepted(
    database_url: str, engine: AsyncEngine
) -> None:
    rotating = create_app(make_settings(database_url, ops_api_token="new-ops-token,old-ops-token"))
    async with running(rotating), client_for(rotating) as client:
        r = await client.post("/ops/login", data={"token": "old-ops-token"})
        assert r.status_code == 303
        assert "old-ops-token" not in r.headers["set-cookie"]
        cookie = client.cookies[COOKIE]
        assert (await client.get("/ops")).status_code == 200
    assert read_session(cookie, ("new-ops-token", "old-ops-token")) is not None
    assert read_session(cookie, ("old-ops-token",)) is not None
    assert read_session(cookie, ("new-ops-token",)) is None  # the old token was removed
    rotated = create_app(make_settings(database_url, ops_api_token="new-ops-token"))
    async with running(rotated), client_for(rotated) as client:
        client.cookies.set(COOKIE, cookie, domain="gateway.localhost", path="/ops")
        assert (await client.get("/ops")).status_code == 303
        assert (await client.post("/ops/login", data={"token": "old-ops-token"})
                ).status_code == 403


async def test_sign_in_goes_back_only_to_the_ops_page(page_client: httpx.AsyncClient) -> None:
    for target in ("//evil.example/ops", "https://evil.example/ops", "/\\evil.example",
                   "/orders", "/opsx", "javascript:alert(1)"):
        r = await page_client.post("/ops/login", data={"token": OPS_TOKEN, "next": target})
        assert r.headers["location"] == "/ops", target
    r = await page_client.post("/ops/login",
                               data={"token": OPS_TOKEN, "next": "/ops?status=paid"})
    assert r.headers["location"] == "/ops?status=paid"


async def test_signing_out_needs_the_csrf_token_and_ends_the_session(
    signed_in: httpx.AsyncClient,
) -> None:
    page = (await signed_in.get("/ops")).text
    assert (await signed_in.post("/ops/logout")).status_code == 403
    assert (await signed_in.post("/ops/logout", data={"csrf": "0" * 64})).status_code == 403
    r = await signed_in.post("/ops/logout", data={"csrf": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == "/ops/login"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert (await signed_in.get("/ops")).status_code == 303


async def test_a_cookie_kept_from_before_sign_out_is_refused_after_it(
    gateway_app: FastAPI, signed_in: httpx.AsyncClient,
) -> None:
    """Signing out ends the session on the server, not only in the browser: a copy of the
    cookie (another tab, a proxy log, a stolen laptop's profile) is refused afterwards."""
    kept = signed_in.cookies[COOKIE]
    page = (await signed_in.get("/ops")).text
    r = await signed_in.post("/ops/logout", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    async with client_for(gateway_app, peer="198.51.100.4") as replay:
        replay.cookies.set(COOKIE, kept, domain="gateway.localhost", path="/ops")
        r = await replay.get("/ops")
        assert r.status_code == 303 and r.headers["location"].startswith("/ops/login")
        refund = await replay.post("/ops/orders/T1/cancel",
                                   data={"amount": "1000", "csrf": csrf_of(page)})
        assert refund.status_code == 403 and "sign in again" in refund.text
        again = await replay.post("/ops/logout", data={"csrf": csrf_of(page)})
        assert again.status_code == 403


async def test_signing_out_ends_only_that_session(gateway_app: FastAPI) -> None:
    async with client_for(gateway_app) as alice, client_for(gateway_app) as bob:
        await sign_in(alice)
        await sign_in(bob)
        page = (await alice.get("/ops")).text
        assert (await alice.post("/ops/logout", data={"csrf": csrf_of(page)})).status_code == 303
        assert (await bob.get("/ops")).status_code == 200
        assert (await alice.get("/ops")).status_code == 303


async def test_sessions_are_on_record_by_digest_and_expired_ones_go_at_sign_in(
    gateway_app: FastAPI, engine: AsyncEngine, page_client: httpx.AsyncClient,
) -> None:
    now = utcnow()
    async with create_sessionmaker(engine)() as session:
        session.add_all([
            OpsSession(digest="a" * 64, created_at=now - timedelta(hours=9),
                       expires_at=now - timedelta(hours=1)),
            OpsSession(digest="b" * 64, created_at=now - timedelta(hours=8, seconds=1),
                       expires_at=now - timedelta(seconds=1)),
            OpsSession(digest="c" * 64, created_at=now, expires_at=now + timedelta(hours=1))])
        await session.commit()

    await sign_in(page_client)
    cookie = page_client.cookies[COOKIE]
    rows = await scalar(engine, "SELECT count(*) FROM ops_sessions")
    assert rows == 2  # the expired two are gone; another operator's live session stays
    assert await scalar(engine, "SELECT count(*) FROM ops_sessions WHERE digest = :d",
                        d="c" * 64) == 1
    _, nonce, _ = cookie.split(".")
    stored = await scalar(engine, "SELECT digest FROM ops_sessions WHERE digest <> :d",
                          d="c" * 64)
    assert nonce not in stored and cookie not in stored  # a leaked table replays nothing
    assert await scalar(engine, "SELECT source_addr FROM ops_sessions WHERE digest = :d",
                        d=stored) == "198.51.100.4"

    page = (await page_client.get("/ops")).text
    await page_client.post("/ops/logout", data={"csrf": csrf_of(page)})
    assert await scalar(engine, "SELECT count(*) FROM ops_sessions") == 1


async def test_a_session_whose_record_is_gone_is_refused(
    signed_in: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    """Deleting the rows ends every session at once (docs/operations.md)."""
    assert (await signed_in.get("/ops")).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM ops_sessions"))
    assert (await signed_in.get("/ops")).status_code == 303


async def test_forged_stale_and_expired_cookies_are_refused(
    page_client: httpx.AsyncClient,
) -> None:
    now = time.time()
    await sign_in(page_client)
    good = page_client.cookies[COOKIE]
    expires, nonce, signature = good.split(".")
    forged = [
        session_cookie("a-rotated-ops-token"),  # signed with another (an old) token
        session_cookie(OPS_TOKEN, now=now - SESSION_SECONDS - 5),  # expired
        f"{int(expires) + 3600}.{nonce}.{signature}",  # extended by hand
        f"{expires}.{nonce}.{'0' * 64}",
        f"{expires}.{nonce}",
        session_cookie(OPS_TOKEN),  # well signed, but no session was started with it
        OPS_TOKEN,
        "",
        "1.2.3",
        "x" * 500,
    ]
    for value in forged:
        page_client.cookies.set(COOKIE, value, domain="gateway.localhost", path="/ops")
        r = await page_client.get("/ops")
        assert r.status_code == 303, value
        assert r.headers["location"].startswith("/ops/login")
        post = await page_client.post("/ops/orders/T1/cancel", data={"csrf": "x"})
        assert post.status_code == 403, value
    page_client.cookies.set(COOKIE, good, domain="gateway.localhost", path="/ops")
    assert (await page_client.get("/ops")).status_code == 200
    # A CSRF token of another session is no good either.
    page = (await page_client.get("/ops")).text
    await sign_in(page_client)  # a second session
    assert page_client.cookies[COOKIE] != good
    r = await page_client.post("/ops/logout", data={"csrf": csrf_of(page)})
    assert r.status_code == 403


async def test_the_bearer_ops_token_works_and_the_shop_token_does_not(
    gateway_app: FastAPI, ops: httpx.AsyncClient, shop: httpx.AsyncClient,
) -> None:
    r = await ops.get("/ops")
    assert r.status_code == 200
    assert "id='sign-out'" not in r.text  # no session to end
    assert (await shop.get("/ops")).status_code == 403
    assert (await shop.post("/ops/orders/T1/cancel", data={"amount": "1"})).status_code == 403
    async with client_for(gateway_app, authorization="Bearer wrong") as wrong:
        assert (await wrong.get("/ops/review")).status_code == 403


# -- the list ---------------------------------------------------------------------------------

async def test_filters_paging_and_totals_on_the_list(
    signed_in: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    statuses = ("paid", "pending", "failed", "needs_review")
    await add_orders(engine, *(
        dict(order_no=f"L{n:03d}", status=statuses[n % 4], amount=1000 + n,
             pgcode=("creditcard", "mobile")[n % 2], user_id=f"u{n % 3}") for n in range(30)))
    expected = [f"L{n:03d}" for n in reversed(range(30)) if n % 4 == 0 and n % 2 == 0]

    r = await signed_in.get("/ops", params={"status": "paid", "pgcode": "creditcard",
                                            "limit": "3", "user_id": ""})
    assert r.status_code == 200
    assert "id='total-count'>8<" in r.text
    assert f"id='total-amount'>{sum(1000 + int(n[1:]) for n in expected):,} won<" in r.text
    assert "<option value='paid' selected>" in r.text  # the form keeps the filter
    seen = order_nos(r.text)
    assert href_of(r.text, "first-page") is None
    next_url = href_of(r.text, "next-page")
    pages = 1
    while next_url:
        assert "status=paid" in next_url and "pgcode=creditcard" in next_url
        page = (await signed_in.get(next_url)).text
        assert href_of(page, "first-page") is not None
        seen += order_nos(page)
        next_url = href_of(page, "next-page")
        pages += 1
    assert seen == expected and pages == 3

    user = (await signed_in.get("/ops", params={"user_id": "u1", "sort": "amount"})).text
    assert order_nos(user) == [f"L{n:03d}" for n in range(30) if n % 3 == 1]
    review = (await signed_in.get("/ops", params={"needs_review": "true"})).text
    assert set(order_nos(review)) == {f"L{n:03d}" for n in range(30) if n % 4 == 3}
    future = (await signed_in.get("/ops", params={"created_from": "2099-01-01"})).text
    assert order_nos(future) == [] and "No orders match" in future

    for bad in ({"status": "bogus"}, {"created_from": "yesterday"}, {"sort": "user_id"},
                {"limit": "0"}, {"cursor": "garbage"}, {"colour": "red"}):
        refused = await signed_in.get("/ops", params=bad)
        assert refused.status_code == 422, bad
        assert "id='error'" in refused.text and "id='filters'" in refused.text

    export = await signed_in.get(href_of(r.text, "export") or "")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert [line.split(",")[0] for line in export.text.splitlines()[1:]] == expected


# -- one order ------------------------------------------------------------------------------

@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url) as gateway:
        yield gateway


@pytest.fixture
async def gw_page(gw: SimGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gw.service) as client:
        await sign_in(client)
        yield client


async def paid_order(gw: SimGateway, **overrides: Any) -> dict[str, Any]:
    order = await gw.create_order(**overrides)
    await gw.pay(order)
    for _ in range(100):  # the simulator's callback arrives on its own
        detail = await gw.order(order["order_no"])
        if detail["status"] == "paid" and len(detail["deliveries"]) == 2:
            return order
        await asyncio.sleep(0.05)
    raise AssertionError("the order was not paid with both deliveries")


def timeline_rows(page: str) -> list[tuple[str, int, str]]:
    return [(kind, int(row_id), at) for kind, row_id, at in re.findall(
        r"<tr class='timeline-(\w+)' data-id='(\d+)' data-at='([^']+)'>", page)]


async def test_the_order_page_shows_every_field_and_one_timeline_in_time_order(
    gw: SimGateway, gw_page: httpx.AsyncClient,
) -> None:
    order = await paid_order(gw, amount=10000, product_name="Coffee beans")
    refund = await gw.ops.post(f"/orders/{order['order_no']}/cancel", json={"amount": 2500})
    assert refund.status_code == 200, refund.text
    detail = await gw.order(order["order_no"])

    r = await gw_page.get(f"/ops/orders/{order['order_no']}")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    for name in ("order_no", "tid", "cid", "paid_at", "cancelled_amount", "product_name"):
        assert f"id='field-{name}'" in r.text
    assert "id='field-cancelled_amount'>2,500 won<" in r.text
    assert "id='field-remaining'>7,500 won<" in r.text
    assert "KST" in r.text and "Coffee beans" in r.text

    rows = timeline_rows(r.text)
    assert [at for _, _, at in rows] == sorted(at for _, _, at in rows)  # time order
    kinds = [kind for kind, _, _ in rows]
    assert kinds[0] == "created"
    assert sorted(row_id for kind, row_id, _ in rows if kind == "delivery") == sorted(
        d["id"] for d in detail["deliveries"])
    assert kinds.count("state") == len(detail["transitions"]) == 3  # →pending →paid →partial
    assert kinds.count("refund") == 1 and kinds.count("audit") == len(detail["audit"]) >= 1
    assert kinds.count("event") == 2  # order.paid, order.partially_cancelled
    # Each state change comes after the delivery that caused it, the refund before its state.
    position = {(kind, row_id): i for i, (kind, row_id, _) in enumerate(rows)}
    in_row = r"(?:(?!</tr>).)*?"
    cause = re.findall(rf"timeline-state' data-id='(\d+)'{in_row}by delivery #(\d+)", r.text)
    assert cause
    for state_id, delivery_id in cause:
        assert position[("delivery", int(delivery_id))] < position[("state", int(state_id))]
    states = [re.sub(r"<[^>]+>", "", m) for m in re.findall(
        rf"timeline-state'{in_row}</span></td><td>({in_row}) · event", r.text)]
    assert states == ["created → pending", "pending → paid", "paid → partially_cancelled"]
    assert kinds.index("refund") < len(kinds) - 1 - kinds[::-1].index("state")
    assert "callback" in r.text and "return" in r.text and "payhash_ok" in r.text

    missing = await gw_page.get("/ops/orders/NOPE")
    assert missing.status_code == 404 and "no order" in missing.text


# -- the review queue and the chart ---------------------------------------------------------

async def test_the_review_queue_lists_needs_review_orders_with_their_reason(
    signed_in: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await add_orders(
        engine,
        dict(order_no="R1", status="needs_review", review_reason="amount 900 != order 1000"),
        dict(order_no="R2", status="paid", paid_at=utcnow(), tid="tR2"),
        dict(order_no="R3", status="needs_review", review_reason="user_id mismatch"))
    r = await signed_in.get("/ops/review")
    assert r.status_code == 200
    assert order_nos(r.text) == ["R3", "R1"]
    assert "amount 900 != order 1000" in r.text and "user_id mismatch" in r.text
    assert "id='review-count'>2 order(s)" in r.text
    one = (await signed_in.get("/ops/orders/R1")).text
    assert "id='review-reason'>Needs review: amount 900 != order 1000<" in one
    assert "id='not-refundable'" in one and "id='cancel-form'" not in one


async def test_the_daily_chart_draws_a_bar_per_day_and_method(
    signed_in: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    now = utcnow()
    paid = [("creditcard", now, 1000), ("creditcard", now, 2000), ("mobile", now, 500),
            ("creditcard", now - timedelta(days=2), 700), ("kakaopay", now - timedelta(days=20),
                                                           9999)]
    await add_orders(engine, *(
        dict(order_no=f"C{n}", status="paid", pgcode=pg, paid_at=at, tid=f"tC{n}", amount=amount)
        for n, (pg, at, amount) in enumerate(paid)),
        dict(order_no="C9", status="pending"))
    r = await signed_in.get("/ops/totals")
    assert r.status_code == 200 and "<svg id='chart'" in r.text
    bars = re.findall(r"<rect class='bar' data-day='([\d-]+)' data-pgcode='(\w+)' "
                      r"data-count='(\d+)' data-amount='(\d+)'", r.text)
    today = now.astimezone(KST).date()
    assert sorted(bars) == sorted([
        (today.isoformat(), "creditcard", "2", "3000"),
        (today.isoformat(), "mobile", "1", "500"),
        ((today - timedelta(days=2)).isoformat(), "creditcard", "1", "700"),
    ])
    assert "kakaopay" not in r.text.split("<svg", 1)[1]  # paid 20 days ago: out of range
    heights = dict(((d, p), float(h)) for d, p, h in re.findall(
        r"data-day='([\d-]+)' data-pgcode='(\w+)'[^>]*height='([\d.]+)'", r.text))
    assert heights[(today.isoformat(), "creditcard")] > heights[(today.isoformat(), "mobile")]
    by_count = await signed_in.get("/ops/totals", params={"measure": "count"})
    assert by_count.status_code == 200 and "by count" in by_count.text
    assert "<table id='daily'>" in r.text and "3,000 won" in r.text


# -- the refund -----------------------------------------------------------------------------

async def test_a_refund_needs_confirmation_and_the_csrf_token_then_refunds_once(
    gw: SimGateway, gw_page: httpx.AsyncClient,
) -> None:
    order = await paid_order(gw, amount=10000)
    no = order["order_no"]
    page = (await gw_page.get(f"/ops/orders/{no}")).text
    assert "id='cancel-form'" in page
    csrf = csrf_of(page)

    # No CSRF token, or a wrong one: refused, nothing happens.
    assert (await gw_page.post(f"/ops/orders/{no}/cancel",
                               data={"amount": "3000"})).status_code == 403
    assert (await gw_page.post(f"/ops/orders/{no}/cancel",
                               data={"amount": "3000", "csrf": "f" * 64})).status_code == 403
    # Even a "confirmed" form without the token.
    assert (await gw_page.post(f"/ops/orders/{no}/cancel", data={
        "amount": "3000", "confirm": "yes", "key": "a" * 32})).status_code == 403

    # Step one only asks.
    ask = await gw_page.post(f"/ops/orders/{no}/cancel", data={"amount": "3,000", "csrf": csrf})
    assert ask.status_code == 200
    assert "Yes, refund 3,000 won" in ask.text
    assert (await gw.order(no))["refunds"] == []

    # Step two refunds; the same confirmation sent twice refunds once.
    confirm = {"amount": hidden(ask.text, "amount"), "key": hidden(ask.text, "key"),
               "confirm": "yes", "csrf": csrf}
    done = await gw_page.post(f"/ops/orders/{no}/cancel", data=confirm)
    assert done.status_code == 200, done.text
    assert "id='refund-status'>Refunded<" in done.text
    again = await gw_page.post(f"/ops/orders/{no}/cancel", data=confirm)
    assert again.status_code == 200
    detail = await gw.order(no)
    assert detail["status"] == "partially_cancelled" and detail["cancelled_amount"] == 3000
    assert [(r["amount"], r["requested_by"]) for r in detail["refunds"]] == [(3000, "ops-page")]
    assert {a["action"]: a["outcome"] for a in detail["audit"]}["partial_cancel"] == "done"
    payment = (await gw.sim.get(f"/_sim/payments/{order['token']}")).json()
    assert len(payment["cancels"]) == 1

    # Too much: refused on the confirmation step, naming the rule; nothing sent.
    too_much = await gw_page.post(f"/ops/orders/{no}/cancel",
                                  data={"amount": "8000", "csrf": csrf})
    assert too_much.status_code == 422 and "remaining 7000 won" in too_much.text
    assert "id='confirm'" not in too_much.text
    bad = await gw_page.post(f"/ops/orders/{no}/cancel", data={"amount": "-5", "csrf": csrf})
    assert bad.status_code == 422

    # Empty amount: the whole remaining.
    ask = await gw_page.post(f"/ops/orders/{no}/cancel", data={"amount": "", "csrf": csrf})
    assert "Yes, refund 7,000 won" in ask.text and "all that remains" in ask.text
    done = await gw_page.post(f"/ops/orders/{no}/cancel", data={
        "amount": hidden(ask.text, "amount"), "key": hidden(ask.text, "key"),
        "confirm": "yes", "csrf": csrf})
    assert done.status_code == 200 and "cancelled" in done.text
    assert (await gw.order(no))["status"] == "cancelled"
    assert "id='not-refundable'" in (await gw_page.get(f"/ops/orders/{no}")).text


async def test_the_bearer_ops_token_can_refund_without_a_csrf_token(gw: SimGateway) -> None:
    order = await paid_order(gw, amount=5000)
    r = await gw.ops.post(f"/ops/orders/{order['order_no']}/cancel", data={
        "amount": "5000", "confirm": "yes", "key": "b" * 32})
    assert r.status_code == 200 and "Refunded" in r.text
    assert (await gw.order(order["order_no"]))["status"] == "cancelled"


# -- escaping ---------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
SHORT = "<script>x</script>"  # user_name holds 20 characters
WEIRD_NO = "X\"'><b>1"


async def test_everything_shown_is_escaped(
    signed_in: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    now = utcnow()
    hostile = dict(product_name=SCRIPT + ATTRIBUTE, custom_parameter=ATTRIBUTE + SCRIPT,
                   user_name=SHORT, user_id="u<i>1", payment_details={"note": SCRIPT})
    review, paid = await add_orders(
        engine,
        dict(order_no=WEIRD_NO, status="needs_review", review_reason=SCRIPT + ATTRIBUTE,
             **hostile),
        dict(order_no="XSS2", status="paid", tid="tXSS2", paid_at=now, transaction_date=now,
             **hostile))
    async with create_sessionmaker(engine)() as session:
        delivery = Delivery(kind="callback", received_at=now, source_addr="127.0.0.1",
                            peer_addr="127.0.0.1", raw_body="{}", order_id=review.id,
                            order_no=WEIRD_NO, tid=None, verification="payhash_bad",
                            outcome="rejected", detail=ATTRIBUTE, response_code=1)
        session.add(delivery)
        await session.flush()
        session.add_all([
            OrderTransition(order_id=review.id, from_status="pending", to_status="needs_review",
                            event="mismatch", reason=SCRIPT, delivery_id=delivery.id,
                            created_at=now),
            AuditEntry(at=now, actor="ops", action="sync", outcome="done", order_id=review.id,
                       order_no=WEIRD_NO, detail={"why": ATTRIBUTE}),
            OutboxEvent(event_id="evt_xss", order_id=review.id, order_no=WEIRD_NO,
                        type="order.needs_review", payload={}, status="dead", attempts=3,
                        next_attempt_at=now, last_error=SCRIPT, created_at=now)])
        await session.commit()

    list_page = (await signed_in.get("/ops")).text
    review_page = (await signed_in.get("/ops/review")).text
    links = re.findall(r"<a href='(/ops/orders/[^']*)' class='order-link'>", list_page)
    assert "/ops/orders/X%22%27%3E%3Cb%3E1" in links
    detail = await signed_in.get(html.unescape(links[links.index(
        "/ops/orders/X%22%27%3E%3Cb%3E1")]))
    assert detail.status_code == 200
    paid_page = (await signed_in.get("/ops/orders/XSS2")).text
    confirm = await signed_in.post("/ops/orders/XSS2/cancel",
                                   data={"amount": "", "csrf": csrf_of(paid_page)})
    assert confirm.status_code == 200 and "Yes, refund" in confirm.text
    filtered = (await signed_in.get("/ops", params={"user_id": "u<i>1", "order_no": ATTRIBUTE})
                ).text

    pages = {"list": list_page, "review": review_page, "detail": detail.text,
             "paid": paid_page, "confirm": confirm.text, "filtered": filtered}
    for name, page in pages.items():
        assert "<script" not in page, name
        assert "<img" not in page and "onerror=alert(1)>" not in page, name
        assert "<b>1" not in page and "<i>1" not in page, name
    for name in ("list", "review", "detail", "paid", "confirm"):
        assert escaped(SCRIPT) in pages[name], name
        assert escaped(ATTRIBUTE) in pages[name], name
    for name in ("list", "review", "detail", "paid"):
        assert escaped(SHORT) in pages[name], name
    assert escaped(WEIRD_NO) in pages["detail"]
    assert escaped("u<i>1") in pages["filtered"] and escaped(ATTRIBUTE) in filtered
    assert detail.headers["content-security-policy"].startswith("default-src 'none'")
    # The timeline's own fields: the reason, the delivery's detail, the audit, the event.
    timeline = detail.text.split("id='timeline'", 1)[1]
    assert escaped(SCRIPT) in timeline and escaped(ATTRIBUTE) in timeline
    assert paid.order_no == "XSS2"
