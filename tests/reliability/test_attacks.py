"""Targeted attacks on the three Payletter URLs (issue 8, item 4).

What tests/test_callback.py and tests/test_return.py already cover (zero payhash, non-hex
payhash, a return replayed after the other order was paid, a plain XFF from an untrusted
peer, one oversized body) is not repeated here. Every attack must end in a clear non-zero
answer or 4xx, no 5xx, and no state change (a delivery record is expected: invariant 4).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from tests.factories import callback_body, create_order, path_of, return_fields, sent_request
from tests.fake_payletter import FakePayletter
from tests.payletter_vectors import PAY_TEST_PAYMENT_KEY, payhash
from tests.reliability.fuzz_support import Snapshot, snapshot
from tests.support import PAYLETTER_IP, client_for, make_settings, running, scalar

ACK = {"code": 0, "message": ""}
SHOP = "Bearer shop-token-for-tests"
OPS = "Bearer ops-token-for-tests"
OTHER_KEY = "T1RIRVJfTUVSQ0hBTlRfUEFZTUVOVF9LRVlfMTIzNDU2Nzg="  # a second merchant's key


async def status_of(client: httpx.AsyncClient, order_no: str) -> dict[str, Any]:
    r = await client.get(f"/orders/{order_no}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def outcome_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return query["outcome"][0]


async def unchanged(engine: AsyncEngine, before: Snapshot) -> None:
    assert (await snapshot(engine)).differences(before) == []


async def no_error_deliveries(engine: AsyncEngine) -> None:
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE outcome = 'error'") == 0


# ---- payhash forgery ------------------------------------------------------------------


def _flip(hex_text: str) -> str:
    last = hex_text[-1]
    return hex_text[:-1] + ("0" if last != "0" else "1")


def _md5_doubled(b: dict[str, Any]) -> str:
    text = f"{b['user_id']}{b['amount']}{b['tid']}{PAY_TEST_PAYMENT_KEY}"
    return hashlib.md5(text.encode()).hexdigest() * 2  # noqa: S324 - a forgery, on purpose


def _decimal_amount(b: dict[str, Any]) -> str:
    text = f"{b['user_id']}{b['amount']}.0{b['tid']}{PAY_TEST_PAYMENT_KEY}"
    return hashlib.sha256(text.encode()).hexdigest()


# (name, forge(valid payhash, body)): each must be refused, on callback and return alike.
FORGERIES: list[tuple[str, Callable[[str, dict[str, Any]], Any]]] = [
    ("valid-but-last-digit-flipped", lambda good, b: _flip(good)),
    ("random-sha256", lambda good, b: hashlib.sha256(b"x").hexdigest()),
    ("truncated-63", lambda good, b: good[:-1]),
    ("extended-65", lambda good, b: good + "0"),
    ("leading-space", lambda good, b: f" {good}"),
    ("trailing-newline", lambda good, b: f"{good}\n"),
    ("fullwidth-digit", lambda good, b: good.replace(good[0], "\uff10", 1)),
    ("hash-of-hash", lambda good, b: hashlib.sha256(good.encode()).hexdigest()),
    # The same formula with another merchant's key, or with no key at all.
    ("another-merchants-key",
     lambda good, b: payhash(b["user_id"], b["amount"], b["tid"], OTHER_KEY)),
    ("no-key", lambda good, b: payhash(b["user_id"], b["amount"], b["tid"], "")),
    # The right key over other fields: order_no instead of tid, amount as "1000.0".
    ("order-no-instead-of-tid", lambda good, b: payhash(b["user_id"], b["amount"],
                                                        b["order_no"])),
    ("amount-as-decimal", lambda good, b: _decimal_amount(b)),
    ("md5-doubled-to-64", lambda good, b: _md5_doubled(b)),
    ("list-holding-the-valid-hash", lambda good, b: [good]),
    ("object-holding-the-valid-hash", lambda good, b: {"payhash": good}),
]


async def test_a_forged_payhash_is_refused_on_callback_and_return(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, browser: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    order = await create_order(shop)
    before = await snapshot(engine)
    body = callback_body(order)
    return_url = path_of(sent_request(fake_payletter, order["order_no"])["return_url"])
    for name, forge in FORGERIES:
        forged = body | {"payhash": forge(body["payhash"], body)}
        r = await payletter_peer.post("/payletter/callback", json=forged)
        assert 400 <= r.status_code < 500 and r.json()["code"] not in (0, None), (name, r.text)
        form = return_fields(order) | {"payhash": forged["payhash"]}
        r = await browser.post(return_url, json=form)
        assert r.status_code == 400 or outcome_of(r) == "rejected", (name, r.text)
    await unchanged(engine, before)
    await no_error_deliveries(engine)
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 2 * len(FORGERIES)


async def test_the_payhash_is_compared_case_insensitively_as_hex(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient
) -> None:
    """Lower-case hex of the right digest is the same digest (Payletter sends upper case)."""
    order = await create_order(shop)
    body = callback_body(order)
    r = await payletter_peer.post("/payletter/callback",
                                  json=body | {"payhash": body["payhash"].lower()})
    assert r.json() == ACK
    assert (await status_of(shop, order["order_no"]))["status"] == "paid"


async def test_a_payhash_signed_with_another_merchants_key_does_not_pay_its_order(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    """Two merchants: a result signed with merchant B's key can't pay merchant A's order."""
    merchants = json.dumps([{"client_id": "other_mid", "payment_key": OTHER_KEY,
                             "search_key": "T1RIRVJfU0VBUkNIX0tFWQ=="}])
    settings = make_settings(database_url, payletter_merchants=merchants)
    async with running(create_app(settings, fake_payletter.transport)) as app, \
            client_for(app, authorization=SHOP) as shop, \
            client_for(app, peer=PAYLETTER_IP) as payletter:
        order = await create_order(shop)  # the primary merchant's
        before = await snapshot(engine)
        body = callback_body(order)
        body["payhash"] = payhash(body["user_id"], body["amount"], body["tid"], OTHER_KEY)
        r = await payletter.post("/payletter/callback", json=body)
        assert r.json()["code"] == 401
        await unchanged(engine, before)


# ---- replay of another order's valid result ------------------------------------------


async def test_another_orders_result_replayed_through_the_callback_from_outside_is_refused(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    """A result stolen from order A, re-addressed to B and sent from anywhere but Payletter."""
    a, b = await create_order(shop), await create_order(shop)
    stolen = callback_body(a) | {"order_no": b["order_no"]}  # payhash still verifies
    before = await snapshot(engine)
    for peer, xff in [("203.0.113.7", None), ("203.0.113.7", PAYLETTER_IP),
                      ("127.0.0.1", PAYLETTER_IP), ("::1", PAYLETTER_IP)]:
        async with client_for(gateway_app, peer=peer) as outsider:
            headers = {"X-Forwarded-For": xff} if xff else {}
            r = await outsider.post("/payletter/callback", json=stolen, headers=headers)
            assert r.status_code == 403 and r.json()["code"] == 403
    await unchanged(engine, before)
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 0


async def test_a_paid_orders_result_replayed_by_payletter_for_another_order_never_pays_it(
    shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    """Even from Payletter's address: A's tid can't pay B (B is held for review instead)."""
    a, b = await create_order(shop), await create_order(shop)
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(a))
            ).json() == ACK
    replay = callback_body(a) | {"order_no": b["order_no"]}
    r = await payletter_peer.post("/payletter/callback", json=replay)
    assert r.json()["code"] == 409
    state = await status_of(shop, b["order_no"])
    assert state["status"] == "needs_review" and state["tid"] is None
    assert (await status_of(shop, a["order_no"]))["status"] == "paid"


async def test_a_paid_orders_return_replayed_on_its_own_link_changes_nothing(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    """The buyer reloads the return page (or replays it later): a duplicate, nothing more."""
    order = await create_order(shop)
    return_url = path_of(sent_request(fake_payletter, order["order_no"])["return_url"])
    result = fake_payletter.confirms(return_fields(order))
    assert outcome_of(await browser.post(return_url, data=result)) == "applied"
    before = await snapshot(engine)
    for _ in range(3):
        assert outcome_of(await browser.post(return_url, data=return_fields(order))
                          ) == "duplicate"
    # A "declined" replayed on the same signed link can't undo the payment either.
    declined = {"code": "1001", "message": "declined", "order_no": order["order_no"]}
    assert outcome_of(await browser.post(return_url, data=declined)) == "ignored"
    await unchanged(engine, before)


async def test_a_return_signed_for_one_order_cannot_cancel_or_fail_another(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter,
    engine: AsyncEngine,
) -> None:
    """A's signed return and cancel links, carrying B's order_no in body or query."""
    a, b = await create_order(shop), await create_order(shop)
    sent = sent_request(fake_payletter, a["order_no"])
    a_return, a_cancel = path_of(sent["return_url"]), path_of(sent["cancel_url"])
    before = await snapshot(engine)
    declined_b = {"code": "1001", "message": "declined", "order_no": b["order_no"]}
    assert outcome_of(await browser.post(a_return, data=declined_b)) == "rejected"
    sig = parse_qs(urlsplit(a_cancel).query)["sig"][0]
    for path in (f"/payletter/cancel?order_no={b['order_no']}&sig={sig}",
                 # Two order_nos: the one verified is the one acted on (the last).
                 f"/payletter/cancel?order_no={a['order_no']}&order_no={b['order_no']}"
                 f"&sig={sig}",
                 f"/payletter/return?order_no={b['order_no']}&sig={sig}"):
        r = await browser.post(path, data=declined_b)
        assert outcome_of(r) == "rejected"
    await unchanged(engine, before)


async def test_a_link_signature_of_any_shape_is_refused_not_an_internal_error(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    """Non-ASCII signatures used to crash hmac.compare_digest (TypeError → "error")."""
    order = await create_order(shop)
    before = await snapshot(engine)
    declined = {"code": "1001", "message": "declined", "order_no": order["order_no"]}
    for sig in ("한글", "\u0130" * 32, "ａ" * 32, "%FF%FE", "\x00" * 32, "0" * 4096):
        for path in ("/payletter/return", "/payletter/cancel"):
            r = await browser.post(path, params={"order_no": order["order_no"], "sig": sig},
                                   data=declined)
            assert outcome_of(r) == "rejected", (path, sig)
    await unchanged(engine, before)
    await no_error_deliveries(engine)


async def test_an_unapplied_result_of_a_twin_order_posted_to_its_twins_return_url_is_refused(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, fake_payletter: FakePayletter,
) -> None:
    """payhash covers user_id+amount+tid, not order_no: it verifies on a twin order too.

    B's own signed return URL gets A's genuine, still-unapplied result (same amount, same
    buyer). Payletter says B's payment is not that tid, so B stays pending; A's own return
    with the same result then pays A.
    """
    a = await create_order(shop, amount=1000, user_id="twin")
    b = await create_order(shop, amount=1000, user_id="twin")
    genuine = return_fields(a)
    fake_payletter.statuses[a["order_no"]] = {"token": "1", "tid": genuine["tid"],
                                              "status_code": 4}
    stolen = genuine | {"order_no": b["order_no"]}
    b_return = path_of(sent_request(fake_payletter, b["order_no"])["return_url"])
    r = await browser.post(b_return, data=stolen)
    assert outcome_of(r) == "rejected"
    assert (await status_of(shop, b["order_no"]))["status"] == "pending"
    # Even when Payletter knows a payment for B, it is not this tid.
    fake_payletter.statuses[b["order_no"]] = {"token": "2", "tid": "tpay_other",
                                              "status_code": 4}
    r = await browser.post(b_return, data=stolen)
    assert outcome_of(r) == "rejected"
    assert (await status_of(shop, b["order_no"]))["status"] == "pending"

    a_return = path_of(sent_request(fake_payletter, a["order_no"])["return_url"])
    assert outcome_of(await browser.post(a_return, data=genuine)) == "applied"
    assert (await status_of(shop, a["order_no"]))["status"] == "paid"


# ---- who is calling: XFF spoofing, IPv6 and IPv4-mapped peers --------------------------


@dataclass
class Verdicts:
    """(peer, X-Forwarded-For headers) → whether the callback got past the allowlist."""

    app: FastAPI
    order: dict[str, Any]
    results: dict[str, bool] = field(default_factory=dict)

    async def check(self, peer: str, xff: Iterable[str] = ()) -> bool:
        headers = [("content-type", "application/json"),
                   *(("x-forwarded-for", value) for value in xff)]
        async with client_for(self.app, peer=peer) as client:
            r = await client.post("/payletter/callback",
                                  content=json.dumps(callback_body(self.order)).encode(),
                                  headers=headers)
        assert r.status_code < 500, r.text
        allowed = r.json()["code"] != 403
        self.results[f"{peer} {list(xff)}"] = allowed
        return allowed


@asynccontextmanager
async def gateway(database_url: str, fake: FakePayletter, **settings: Any
                  ) -> AsyncIterator[tuple[FastAPI, dict[str, Any]]]:
    app = create_app(make_settings(database_url, **settings), fake.transport)
    async with running(app), client_for(app, authorization=SHOP) as shop:
        yield app, await create_order(shop)


async def test_x_forwarded_for_is_believed_only_as_far_as_trusted_proxies_vouch(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    """Behind a trusted proxy (127.0.0.5, and ::1): every way to smuggle Payletter's address."""
    async with gateway(database_url, fake_payletter,
                       trusted_proxies="127.0.0.5,::1") as (app, order):
        v = Verdicts(app, order)
        ok = PAYLETTER_IP
        # Appended correctly by the proxy: believed, in any of the forms proxies write.
        assert await v.check("127.0.0.5", [ok])
        assert await v.check("127.0.0.5", [f"  6.6.6.6 ,   {ok}  "])
        assert await v.check("127.0.0.5", ["6.6.6.6", ok])  # one header per hop
        assert await v.check("127.0.0.5", [f"6.6.6.6, {ok}, 127.0.0.5"])  # proxy chain
        assert await v.check("127.0.0.5", [f"::ffff:{ok}"])  # IPv4-mapped is the same host
        assert await v.check("::1", [ok])
        assert await v.check("::ffff:127.0.0.5", [ok])  # the proxy on a dual-stack socket
        # The client wrote Payletter's address itself; the proxy appended the real one.
        assert not await v.check("127.0.0.5", [f"{ok}, 6.6.6.6"])
        assert not await v.check("127.0.0.5", [ok, "6.6.6.6"])
        assert not await v.check("127.0.0.5", [f"{ok},6.6.6.6,127.0.0.5"])
        # Garbage anywhere right of the last untrusted hop proves nothing: refused.
        for garbled in (f"{ok}, garbage", f"{ok}, unknown", f"{ok},", f"{ok}, ,127.0.0.5",
                        f"{ok}:443", f"{ok}; for=x", f"{ok}\t6.6.6.6", "", " ",
                        f"{ok}, 999.1.1.1", f"{ok}, [::1", "121.254.205.166/32"):
            assert not await v.check("127.0.0.5", [garbled]), garbled
        # A proxy that forwards nothing: the proxy itself is the caller, and it isn't Payletter.
        assert not await v.check("127.0.0.5")
        # Everything an untrusted peer writes is ignored, in every shape.
        for peer in ("203.0.113.7", "127.0.0.6", "::2", "::ffff:203.0.113.7", "2001:db8::1"):
            for xff in ([ok], [f"127.0.0.5, {ok}"], [ok, ok], [f"[::ffff:{ok}]:443"]):
                assert not await v.check(peer, xff), (peer, xff)
        # Payletter itself with junk in XFF: the header of an untrusted peer is never read.
        assert await v.check(ok, ["garbage", "6.6.6.6"])
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE source_addr <> :ip",
                        ip=PAYLETTER_IP) == 0


async def test_ipv6_and_ipv4_mapped_peers_against_the_allowlist(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    async with gateway(database_url, fake_payletter,
                       payletter_callback_ips=f"{PAYLETTER_IP},2001:db8:cafe::/48"
                       ) as (app, order):
        v = Verdicts(app, order)
        assert await v.check(PAYLETTER_IP)
        assert await v.check(f"::ffff:{PAYLETTER_IP}")  # dual-stack socket, same host
        assert await v.check(f"::FFFF:{PAYLETTER_IP}")
        assert await v.check("2001:db8:cafe::10")
        assert await v.check("2001:db8:cafe:0:0:0:0:10")
        for stranger in ("::1", "::", "::ffff:127.0.0.1", "2001:db8:caff::1", "127.0.0.1",
                         "0.0.0.0",  # noqa: S104 - a peer address here, not a bind
                         "121.254.205.167", "::121.254.205.166",  # IPv4-compatible form
                         "64:ff9b::79fe:cda6",  # NAT64 of Payletter's address: not the same
                         "2002:79fe:cda6::1",  # 6to4 of it: not the same either
                         "fe80::1%eth0", "", "not-an-ip", "121.254.205.166:443"):
            assert not await v.check(stranger), stranger
    # Only what passed the allowlist was stored, under the address it passed as.
    sources = {row for row in (await _sources(engine))}
    assert sources <= {PAYLETTER_IP, "2001:db8:cafe::10"}


async def _sources(engine: AsyncEngine) -> list[str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return [r[0] for r in (await conn.execute(text("SELECT source_addr FROM deliveries")))]


async def test_an_ipv6_loopback_payletter_in_sim_is_allowed_only_when_listed(
    database_url: str, engine: AsyncEngine, fake_payletter: FakePayletter
) -> None:
    async with gateway(database_url, fake_payletter,
                       payletter_callback_ips="127.0.0.1") as (app, order):
        v = Verdicts(app, order)
        assert await v.check("127.0.0.1")
        assert await v.check("::ffff:127.0.0.1")
        assert not await v.check("::1")  # IPv6 loopback is another address
    async with gateway(database_url, fake_payletter,
                       payletter_callback_ips="127.0.0.1,::1") as (app, order):
        assert await Verdicts(app, order).check("::1")


# ---- bodies too large, lying about their size, or arriving slowly ---------------------


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_post(app: FastAPI, path: str, chunks: list[bytes], *,
                   headers: list[tuple[str, str]], peer: str = PAYLETTER_IP) -> RawAnswer:
    """POST at ASGI level, so headers can lie (httpx would fix Content-Length for us)."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)] or [{"type": "http.request", "body": b""}]
    done = asyncio.Event()
    started: dict[str, Any] = {}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    path_only, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path_only, "raw_path": path_only.encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": (peer, 40000), "server": ("gateway.localhost", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return RawAnswer(started["status"],
                     {k.decode(): v.decode() for k, v in started.get("headers", [])},
                     bytes(body))


LIMIT = 64 * 1024  # MAX_BODY_BYTES' default


# (name, Content-Length sent or None, the chunks of the body)
OVERSIZED: list[tuple[str, str | None, list[bytes]]] = [
    ("says-small-sends-large", "100", [b"{" + b" " * (LIMIT + 10) + b"}"]),
    ("says-small-streams-large", "100", [b"{" + b" " * 4000] * 20 + [b"}"]),
    ("says-large-sends-small", str(LIMIT + 1), [b"{}"]),
    ("says-absurd", str(10**30), [b"{}"]),
    ("negative", "-1", [b"{}"]),
    ("not-a-number", "1e3", [b"{}"]),
    ("two-values", "10, 10", [b"{}"]),
    ("chunked-no-length", None, [b"{" + b" " * 8000] * 10 + [b"}"]),
]


async def test_bodies_larger_than_the_limit_or_lying_about_it_are_refused(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    await create_order(shop)
    before = await snapshot(engine)
    for path in ("/payletter/callback", "/payletter/return", "/payletter/cancel"):
        for name, declared, chunks in OVERSIZED:
            headers = [("content-type", "application/json")]
            if declared is not None:
                headers.append(("content-length", declared))
            answer = await raw_post(gateway_app, path, chunks, headers=headers)
            assert answer.status == 413, (path, name, answer)
            body = answer.json()
            if path.endswith("callback"):
                assert body["code"] == 413 and body["message"], (path, name)
            else:
                assert body["error"]["type"] == "payload_too_large", (path, name)
    await unchanged(engine, before)
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 0


async def test_a_body_under_the_limit_that_lies_small_is_read_whole(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine,
) -> None:
    """Content-Length is a hint for refusing early; what counts is what arrives."""
    order = await create_order(shop)
    content = json.dumps(callback_body(order)).encode()
    answer = await raw_post(gateway_app, "/payletter/callback",
                            [content[:10], content[10:]],
                            headers=[("content-type", "application/json"),
                                     ("content-length", "10")])
    assert answer.status == 200 and answer.json() == ACK


async def test_deeply_nested_json_is_a_clear_400_not_a_crash(
    payletter_peer: httpx.AsyncClient, browser: httpx.AsyncClient, shop: httpx.AsyncClient,
    engine: AsyncEngine,
) -> None:
    """60,000 nested brackets fit in 64 KiB and overflow a recursive JSON parser."""
    deep = b"[" * 30_000 + b"]" * 30_000
    nested = b'{"order_no": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    for content in (deep, nested):
        r = await payletter_peer.post("/payletter/callback", content=content,
                                      headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == 400, r.text
        r = await browser.post("/payletter/return", content=content,
                               headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        r = await shop.post("/orders", content=content,
                            headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, r.text
    await no_error_deliveries(engine)


async def _slow_chunks(content: bytes, started: asyncio.Event, release: asyncio.Event
                       ) -> AsyncIterator[bytes]:
    yield content[:7]
    started.set()
    await release.wait()
    yield content[7:]


@pytest.mark.parametrize("kind", ["callback", "return"])
async def test_a_slow_body_holds_no_transaction_another_delivery_commits_meanwhile(
    gateway_app: FastAPI, shop: httpx.AsyncClient, fake_payletter: FakePayletter,
    engine: AsyncEngine, kind: str,
) -> None:
    """The body is read before any transaction opens. On SQLite every transaction takes the
    database write lock (BEGIN IMMEDIATE, 30 s busy timeout), so a handler that opened one
    before reading would stall every other delivery until the slow client finished."""
    slow_order, fast_order = await create_order(shop), await create_order(shop)
    if kind == "callback":
        slow_path, fast_path = "/payletter/callback", "/payletter/callback"
        slow_body = json.dumps(callback_body(slow_order)).encode()
        fast_body = json.dumps(callback_body(fast_order)).encode()
        peer = PAYLETTER_IP
    else:
        slow_path = path_of(sent_request(fake_payletter, slow_order["order_no"])["return_url"])
        fast_path = path_of(sent_request(fake_payletter, fast_order["order_no"])["return_url"])
        slow_body = json.dumps(fake_payletter.confirms(return_fields(slow_order))).encode()
        fast_body = json.dumps(fake_payletter.confirms(return_fields(fast_order))).encode()
        peer = "203.0.113.7"
    started, release = asyncio.Event(), asyncio.Event()
    async with client_for(gateway_app, peer=peer) as slow, \
            client_for(gateway_app, peer=peer) as fast:
        slow_request = asyncio.create_task(slow.post(
            slow_path, content=_slow_chunks(slow_body, started, release),
            headers={"content-type": "application/json"}))
        await asyncio.wait_for(started.wait(), timeout=5)
        await asyncio.sleep(0.05)  # the slow handler is now waiting for the rest of its body
        assert not slow_request.done()
        r = await asyncio.wait_for(
            fast.post(fast_path, content=fast_body,
                      headers={"content-type": "application/json"}), timeout=5)
        assert r.status_code in (200, 303), r.text
        # Committed while the slow body is still arriving (read on another connection).
        assert await scalar(engine, "SELECT status FROM orders WHERE order_no = :no",
                            no=fast_order["order_no"]) == "paid"
        assert not slow_request.done()
        release.set()
        r = await asyncio.wait_for(slow_request, timeout=10)
        assert r.status_code in (200, 303), r.text
    assert await scalar(engine, "SELECT status FROM orders WHERE order_no = :no",
                        no=slow_order["order_no"]) == "paid"


async def test_a_client_that_disconnects_mid_body_changes_nothing(
    gateway_app: FastAPI, shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order = await create_order(shop)
    before = await snapshot(engine)
    content = json.dumps(callback_body(order)).encode()
    messages = [{"type": "http.request", "body": content[:20], "more_body": True},
                {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/payletter/callback",
             "raw_path": b"/payletter/callback", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json")],
             "client": (PAYLETTER_IP, 40000), "server": ("gateway.localhost", 80)}
    await asyncio.wait_for(gateway_app(scope, receive, send), timeout=10)  # no exception
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert all(m["status"] < 500 for m in starts), starts
    await unchanged(engine, before)
    await no_error_deliveries(engine)


# ---- values no database column can hold ------------------------------------------------

BIG = 2**63
UNSTORABLE = [
    ("GET", "/orders?user_id=a%00b", None, "ops"),
    ("GET", "/orders/a%00b", None, "ops"),
    ("GET", "/orders/a%00b/receipt", None, "ops"),
    ("POST", "/orders/a%00b/sync", None, "ops"),
    ("GET", "/webhooks/events?order_no=a%00", None, "ops"),
    ("GET", "/billing/billkeys?user_id=a%00b", None, "ops"),
    ("GET", f"/billing/billkeys/{BIG}", None, "ops"),
    ("POST", f"/billing/billkeys/{BIG}/revoke", None, "ops"),
    ("GET", f"/billing/billkeys/{-BIG - 1}", None, "ops"),
    ("GET", f"/reconciliations/{BIG}", None, "ops"),
    ("POST", "/billing/charges", {"billkey_id": BIG, "amount": 1000, "product_name": "x"},
     "shop"),
    ("POST", "/orders", {"pgcode": "creditcard", "amount": BIG, "product_name": "x",
                         "user_id": "u"}, "shop"),
    ("POST", "/orders", {"pgcode": "creditcard", "amount": 1000, "tax_amount": BIG,
                         "product_name": "x", "user_id": "u"}, "shop"),
    ("POST", "/orders", {"pgcode": "creditcard", "amount": 1000, "product_name": "x",
                         "user_id": "u\x00"}, "shop"),
    ("POST", "/orders", {"pgcode": "creditcard", "amount": 1000, "product_name": "x",
                         "user_id": "u", "custom_parameter": "\x00"}, "shop"),
]


async def test_a_value_no_column_can_hold_is_a_4xx_not_a_crash_or_an_outage(
    gateway_app: FastAPI, engine: AsyncEngine,
) -> None:
    """A NUL in text (PostgreSQL refuses it) or an integer past 64 bits (SQLite raises
    OverflowError binding it): bad input, answered 4xx, never 500 or 503 'database
    unavailable' (which would page someone for a typo)."""
    for method, path, body, role in UNSTORABLE:
        before = await snapshot(engine)
        token = SHOP if role == "shop" else OPS
        async with client_for(gateway_app, authorization=token) as client:
            r = await client.request(method, path, json=body)
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["message"]
            await unchanged(engine, before)
        else:  # SQLite stores a NUL: harmless there, and the request was otherwise valid
            assert engine.dialect.name == "sqlite", (method, path, r.text)


async def test_an_idempotency_key_with_a_nul_is_a_4xx_or_harmless(
    shop: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    before = await snapshot(engine)
    r = await shop.post("/orders", json={"pgcode": "creditcard", "amount": 1000,
                                         "product_name": "x", "user_id": "u"},
                        headers={"Idempotency-Key": "key\x00"})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        await unchanged(engine, before)
    else:
        assert engine.dialect.name == "sqlite"


async def test_a_number_is_not_a_date_for_reconciliations(
    ops: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Found by the Schemathesis soak: pydantic alone reads 0.0 as 1970-01-01 (Unix time),
    so `{"date": 0}` reconciled 1970. A date is YYYY-MM-DD, or it is a 422."""
    for value in (0, 0.0, "0", "86400", "20261101", "2026-11-01T00:00", True):
        r = await ops.post("/reconciliations", json={"date": value})
        assert r.status_code == 422 and "YYYY-MM-DD" in r.json()["error"]["message"], value
        r = await ops.get("/reconciliations", params={"date": str(value)})
        assert r.status_code == 422, value
    assert await scalar(engine, "SELECT count(*) FROM reconciliation_runs") == 0


async def test_a_cancel_link_naming_an_impossible_order_is_refused_not_an_outage(
    shop: httpx.AsyncClient, browser: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """Found by the soak: /payletter/cancel?order_no=%00 reached a query, which PostgreSQL
    refused, and the visit was recorded as an internal error ("please redeliver")."""
    await create_order(shop)
    before = await snapshot(engine)
    for order_no in ("\x00", "a\x00b", "x" * 5000, "\u2028", "T1\r\nSet-Cookie: a=b"):
        r = await browser.get("/payletter/cancel", params={"order_no": order_no, "sig": "0"})
        assert outcome_of(r) == "rejected", order_no
    await unchanged(engine, before)
    await no_error_deliveries(engine)
