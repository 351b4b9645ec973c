"""Hypothesis-generated hostile bodies for the callback, the return, the cancel page and
POST /orders (issue 8, item 4).

Every generated request must get an answer below 500, a clear refusal unless the request
is genuinely valid, and change nothing: no order's status, tid or amounts, no transition,
no outbox event, no refund, no idempotency record, and not a word to Payletter. Deliveries
of rejected bodies ARE recorded (invariant 4): that is the evidence, not a state change;
but none of them may be an internal `error`.

A small fixed set of real orders (pending, twin, virtual account, paid, failed) is made
first, and the strategies draw their order numbers, tids, amounts and payhashes from it
often enough to reach the checks behind parsing. A body that genuinely verifies (the
strategies can stumble on one) is discarded: applying it is correct, not a finding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.bodies import BodyError, parse_fields
from app.kit.security import verify_link
from app.orders.service import CANCEL_LINK, RETURN_LINK
from app.payletter.payhash import verify_payhash
from app.payletter.results import MalformedResult, parse_result
from tests.factories import callback_body, create_order, path_of, return_fields, sent_request
from tests.fake_payletter import FakePayletter
from tests.payletter_vectors import PAY_TEST_PAYMENT_KEY, VENDOR_CALLBACK_EXAMPLE, payhash
from tests.reliability.fuzz_support import (
    KOREAN,
    budget,
    delivery_outcomes_since,
    hexish,
    hostile_text,
    huge_int,
    junk,
    last_delivery_id,
    snapshot,
)
from tests.support import scalar

KEY = PAY_TEST_PAYMENT_KEY
REFUSED_OUTCOMES = {"rejected", "unknown_order"}


@dataclass(frozen=True)
class Seeded:
    orders: tuple[dict[str, Any], ...]
    return_links: tuple[tuple[str, str], ...]  # (order_no, sig) of each signed return URL
    cancel_links: tuple[tuple[str, str], ...]
    tids: tuple[str, ...]
    payhashes: tuple[str, ...]

    @property
    def order_nos(self) -> list[str]:
        return [o["order_no"] for o in self.orders]


def _link(url: str) -> tuple[str, str]:
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return query["order_no"], query["sig"]


@pytest.fixture
async def seeded(shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
                 browser: httpx.AsyncClient, fake_payletter: FakePayletter) -> Seeded:
    pending = await create_order(shop, amount=1000, user_id="buyer1")
    twin = await create_order(shop, amount=1000, user_id="buyer1")
    account = await create_order(shop, pgcode="virtualaccount", amount=5000)
    paid = await create_order(shop, amount=1000)
    failed = await create_order(shop, amount=2000, user_id="buyer2")
    orders = (pending, twin, account, paid, failed)
    assert (await payletter_peer.post("/payletter/callback", json=callback_body(paid))
            ).json()["code"] == 0
    failed_return = sent_request(fake_payletter, failed["order_no"])["return_url"]
    r = await browser.post(path_of(failed_return),
                           data={"code": "1001", "message": "declined",
                                 "order_no": failed["order_no"]})
    assert r.status_code == 303
    sent = [sent_request(fake_payletter, o["order_no"]) for o in orders]
    tids = tuple(f"tpay_test-{o['order_no']}" for o in orders)
    hashes = tuple(payhash(o["user_id"], o["amount"], tid) for o in orders for tid in tids)
    return Seeded(orders, tuple(_link(s["return_url"]) for s in sent),
                  tuple(_link(s["cancel_url"]) for s in sent), tids, hashes)


# ---- strategies ------------------------------------------------------------------------

# Text that can travel in a URL or a form (no lone surrogates: they can't be encoded).
url_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.text(st.sampled_from(KOREAN + "\x00\t\r\n &=?#%+;'\"<>"), max_size=30),
)
VENDOR_FIELDS = [k for k in VENDOR_CALLBACK_EXAMPLE
                 if k not in ("order_no", "tid", "amount", "user_id", "payhash")]


def result_fields(seeded: Seeded) -> st.SearchStrategy[dict[str, Any]]:
    """The vendor's result fields, each right, wrong-typed, huge, hostile, or missing; or a
    real order's genuine result with a few fields made hostile (to get past parsing)."""
    return st.one_of(_random_result(seeded), _mutated_result(seeded))


def _pick(known: list[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(known), hostile_text, huge_int, junk)


@st.composite
def _mutated_result(draw: st.DrawFn, seeded: Seeded) -> dict[str, Any]:
    order = draw(st.sampled_from(seeded.orders))
    fields: dict[str, Any] = return_fields(order) if draw(st.booleans()) else callback_body(
        order)
    names = [*sorted(fields), "unknown"]
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
        action = draw(st.sampled_from(["hostile", "hostile", "drop", "other-order"]))
        if action == "drop":
            fields.pop(name, None)
        elif action == "other-order":  # a field of another real order: a spliced replay
            fields[name] = callback_body(draw(st.sampled_from(seeded.orders))).get(name)
        else:
            fields[name] = draw(st.one_of(hostile_text, huge_int, junk))
    return fields


def _random_result(seeded: Seeded) -> st.SearchStrategy[dict[str, Any]]:
    pick = _pick
    core = st.fixed_dictionaries({}, optional={
        "order_no": pick([*seeded.order_nos, "NOPE-1"]),
        "tid": pick([*seeded.tids, "tpay_test-ghost"]),
        "amount": pick([1000, "1000", 2000, 5000, "5000", -1000, 0, 1000.0, "1e3"]),
        "user_id": pick(["buyer1", "buyer2", "test_user_id"]),
        "payhash": st.one_of(
            st.sampled_from(seeded.payhashes),
            st.sampled_from(seeded.payhashes).map(str.lower),
            hexish, hostile_text, junk),
        "pgcode": pick(["creditcard", "virtualaccount", "mobile", "kakaopay"]),
        "code": pick(["0", "1001", 0, "", "-1"]),
        "message": pick(["success", "declined"]),
        "account_no": pick(["56211234567890"]),
        "cash_receipt": junk,
        **{name: junk for name in VENDOR_FIELDS if name not in ("cash_receipt",)},
    })
    extra = st.dictionaries(hostile_text, junk, max_size=3)
    return st.builds(lambda c, e: {**e, **c}, core, extra)


@st.composite
def json_bodies(draw: st.DrawFn, seeded: Seeded) -> bytes:
    shape = draw(st.sampled_from(["object", "object-raw-utf8", "not-an-object", "binary",
                                  "truncated", "duplicate-keys"]))
    if shape == "binary":
        return draw(st.binary(max_size=300))
    if shape == "not-an-object":
        return json.dumps(draw(junk)).encode()
    fields = draw(result_fields(seeded))
    if shape == "object-raw-utf8":  # lone surrogates become invalid UTF-8 on the wire
        return json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass")
    text = json.dumps(fields)  # NaN and Infinity included: Python's json reads them back
    if shape == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode()
    if shape == "duplicate-keys" and fields:
        key = next(iter(fields))
        return ("{" + json.dumps(key) + ": " + json.dumps(draw(junk)) + ", "
                + text[1:]).encode() if text != "{}" else text.encode()
    return text.encode()


content_types = st.sampled_from([
    "application/json", "application/json; charset=euc-kr", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "*/*",
    "application/json\x00", "APPLICATION/JSON",
])


def _genuinely_signed(fields: Mapping[str, Any], kind: str) -> bool:
    try:
        result = parse_result(fields, from_return=kind == "return")
    except MalformedResult:
        return False
    return result.payhash is not None and verify_payhash(
        result.payhash, user_id=result.user_id or "", amount=result.amount or 0,
        tid=result.tid or "", payment_key=KEY)


def _fields_or_none(content: bytes, content_type: str | None) -> dict[str, Any] | None:
    try:
        return parse_fields(content, content_type)
    except BodyError:
        return None


async def _assert_nothing_changed(engine: AsyncEngine, before: Any, delivery_id: int,
                                  fake: FakePayletter, calls_before: int) -> None:
    assert (await snapshot(engine)).differences(before) == []
    outcomes = await delivery_outcomes_since(engine, delivery_id)
    assert all(outcome in REFUSED_OUTCOMES for outcome, _ in outcomes), outcomes
    # Payletter was asked nothing but payments/status (to confirm a result with no payhash).
    assert all(path == "v1.0/payments/status" for path, _, _ in fake.calls[calls_before:])


# ---- the callback ----------------------------------------------------------------------


@budget(ci=40, full=1000)
@given(data=st.data())
async def test_hostile_callback_bodies_are_refused_and_change_nothing(
    data: st.DataObject, seeded: Seeded, payletter_peer: httpx.AsyncClient,
    engine: AsyncEngine, fake_payletter: FakePayletter,
) -> None:
    content = data.draw(json_bodies(seeded), label="body")
    content_type = data.draw(content_types, label="content-type")
    fields = _fields_or_none(content, "application/json")
    assume(fields is None or not _genuinely_signed(fields, "callback"))
    before, delivery_id = await snapshot(engine), await last_delivery_id(engine)
    calls_before = len(fake_payletter.calls)

    headers = {"content-type": content_type} if content_type else {}
    r = await payletter_peer.post("/payletter/callback", content=content, headers=headers)

    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    answer = r.json()
    assert isinstance(answer["code"], int) and answer["code"] != 0 and answer["message"]
    await _assert_nothing_changed(engine, before, delivery_id, fake_payletter, calls_before)
    assert len(await delivery_outcomes_since(engine, delivery_id)) == 1  # on record


# ---- the buyer's return and cancel page ------------------------------------------------


@st.composite
def links(draw: st.DrawFn, seeded: Seeded, kind: str) -> dict[str, str] | None:
    own = seeded.return_links if kind == "return" else seeded.cancel_links
    other = seeded.cancel_links if kind == "return" else seeded.return_links
    choice = draw(st.sampled_from(["own", "other-purpose", "other-order", "forged", "none"]))
    if choice == "none":
        return None
    if choice == "forged":
        return draw(st.fixed_dictionaries({}, optional={
            "order_no": st.one_of(st.sampled_from(seeded.order_nos), url_text),
            "sig": st.one_of(hexish, url_text, st.sampled_from([s for _, s in own]))}))
    if choice == "other-order":
        (order_no, _), (_, sig) = draw(st.sampled_from(own)), draw(st.sampled_from(own))
        return {"order_no": order_no, "sig": sig}
    order_no, sig = draw(st.sampled_from(own if choice == "own" else other))
    return {"order_no": order_no, "sig": sig}


@st.composite
def browser_bodies(draw: st.DrawFn, seeded: Seeded) -> tuple[bytes, str | None]:
    shape = draw(st.sampled_from(["form", "form-euc-kr", "json", "garbage-form", "empty"]))
    if shape == "empty":
        return b"", draw(st.one_of(st.none(), content_types))
    if shape == "json":
        return draw(json_bodies(seeded)), draw(content_types)
    if shape == "garbage-form":
        raw = draw(st.one_of(st.binary(max_size=200),
                             st.text(st.sampled_from("%=&+;a한\x00"), max_size=60).map(
                                 lambda t: t.encode("utf-8"))))
        return raw, "application/x-www-form-urlencoded"
    fields = draw(result_fields(seeded))
    form = {str(k): str(v) for k, v in fields.items()}
    encoding = "cp949" if shape == "form-euc-kr" else "utf-8"
    try:
        content = urlencode(form, encoding=encoding).encode("ascii")
    except UnicodeEncodeError:  # lone surrogates, or no EUC-KR for a character
        assume(False)
    return content, draw(st.sampled_from(["application/x-www-form-urlencoded",
                                          "application/x-www-form-urlencoded; charset=utf-8",
                                          "text/plain"]))


def _genuine_browser_visit(kind: str, link: dict[str, str] | None,
                           fields: dict[str, Any] | None) -> bool:
    if link is None or "order_no" not in link or "sig" not in link:
        return False
    order_no, sig = link["order_no"], link["sig"]
    purpose = RETURN_LINK if kind == "return" else CANCEL_LINK
    if not sig.isascii() or not verify_link(KEY, purpose, order_no, sig):
        return False
    if kind == "cancel":
        return True  # the buyer really pressed cancel on a window we opened
    if fields is None:
        return False
    try:
        result = parse_result(fields, from_return=True)
    except MalformedResult:
        return False
    if result.order_no != order_no:
        return False
    return not result.success or _genuinely_signed(fields, "return")


@budget(ci=40, full=1000)
@given(data=st.data())
async def test_hostile_returns_and_cancel_visits_are_refused_and_change_nothing(
    data: st.DataObject, seeded: Seeded, browser: httpx.AsyncClient, engine: AsyncEngine,
    fake_payletter: FakePayletter,
) -> None:
    kind = data.draw(st.sampled_from(["return", "cancel"]), label="kind")
    method = "POST" if kind == "return" else data.draw(st.sampled_from(["GET", "POST"]))
    link = data.draw(links(seeded, kind), label="link")
    content, content_type = data.draw(browser_bodies(seeded), label="body")
    if method == "GET":
        content = b""
    fields = _fields_or_none(content, content_type) if content else {}
    assume(not _genuine_browser_visit(kind, link, fields))
    before, delivery_id = await snapshot(engine), await last_delivery_id(engine)
    calls_before = len(fake_payletter.calls)

    headers = {"content-type": content_type} if content_type else {}
    r = await browser.request(method, f"/payletter/{kind}", params=link, content=content,
                              headers=headers)

    assert r.status_code in (303, 400, 413), (r.status_code, r.text)
    if r.status_code == 303:
        outcome = parse_qs(urlsplit(r.headers["location"]).query)["outcome"][0]
        assert outcome in REFUSED_OUTCOMES, outcome
    else:
        assert r.json()["error"]["message"]
    await _assert_nothing_changed(engine, before, delivery_id, fake_payletter, calls_before)


# ---- POST /orders ----------------------------------------------------------------------

PGCODES = ["creditcard", "virtualaccount", "mobile", "kakaopay", "naverpay", "ssgpay",
           "samsungpay", "banktransfer", "tosspay", "payco", "toss", "CREDITCARD", ""]


@st.composite
def order_requests(draw: st.DrawFn, seeded: Seeded) -> tuple[bytes, dict[str, Any]]:
    def pick(known: list[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.sampled_from(known), hostile_text, huge_int, junk)

    money = pick([1000, 100, 0, -1000, 2**63, 1000.0, "1000", True])
    hostile_fields = {
        "pgcode": pick(PGCODES), "amount": money, "taxfree_amount": money,
        "tax_amount": money, "disposable_cup_deposit": money,
        "product_name": pick(["상품", "Coffee beans", "x" * 121]),
        "user_id": pick(["buyer1", "test_user_id", "x" * 51]),
        "user_name": pick(["테스터"]), "service_name": pick(["페이레터"]),
        "custom_parameter": pick(["k=v"]), "email_addr": pick(["a@b.kr", "not-an-email"]),
        "email_flag": pick(["Y", "N", "y"]), "autopay_flag": pick(["Y", "N"]),
        "receipt_flag": pick(["Y", "N"]), "keyin_flag": pick(["Y"]),
        "order_no": pick([*seeded.order_nos, "NEW-ORDER-1", "../etc", "a" * 41]),
        "client_id": pick(["pay_test", "someone_else"]),
        "expire_date": pick(["20261231", "2026-12-31", "99999999"]),
        "expire_time": pick(["2359", "2400", "9999"]),
        "app_return_url": pick(["https://shop.example/ok", "javascript:alert(1)"]),
        "intent": pick(["pli1.x.y", ""]), "method": pick(["creditcard"]),
    }
    if draw(st.booleans(), label="mutate a valid order"):  # to get past validation
        fields: dict[str, Any] = {"pgcode": "creditcard", "amount": 1000,
                                  "product_name": "상품", "user_id": "buyer1",
                                  "user_name": "테스터", "custom_parameter": "k=v"}
        for name in draw(st.lists(st.sampled_from(sorted(hostile_fields)), min_size=1,
                                  max_size=2, unique=True)):
            fields[name] = draw(hostile_fields[name])
    else:
        fields = draw(st.fixed_dictionaries({}, optional=hostile_fields))
        fields.update(draw(st.dictionaries(hostile_text, junk, max_size=2)))
    headers: dict[str, Any] = {"content-type": "application/json"}
    auth = draw(st.sampled_from(["shop", "shop", "none", "ops", "garbage"]))
    if auth != "none":
        headers["authorization"] = {"shop": "Bearer shop-token-for-tests",
                                    "ops": "Bearer ops-token-for-tests",
                                    "garbage": "Bearer \u00e9\u00e9"}[auth].encode("latin-1")
    key = draw(st.one_of(st.none(), st.text(st.characters(max_codepoint=255,
                                                          exclude_characters="\r\n"),
                                            max_size=300)))
    if key is not None:
        headers["idempotency-key"] = key.encode("latin-1")
    shape = draw(st.sampled_from(["json", "json", "json", "raw-utf8", "binary"]))
    if shape == "binary":
        return draw(st.binary(max_size=200)), headers
    if shape == "raw-utf8":
        return json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass"), headers
    return json.dumps(fields).encode(), headers


@budget(ci=40, full=1000)
@given(data=st.data())
async def test_hostile_order_bodies_get_a_clear_4xx_and_change_nothing(
    data: st.DataObject, seeded: Seeded, shop: httpx.AsyncClient, engine: AsyncEngine,
    fake_payletter: FakePayletter,
) -> None:
    content, headers = data.draw(order_requests(seeded), label="request")
    before = await snapshot(engine)
    calls_before = len(fake_payletter.calls)
    existing = {row[0]: row for row in before.orders}

    r = await shop.post("/orders", content=content,
                        headers={**headers, "authorization": headers.get("authorization", b"")})

    assert r.status_code < 500, (r.status_code, r.text)
    after = await snapshot(engine)
    # Whatever happened, the orders already there are exactly as they were.
    assert {row[0]: row for row in after.orders if row[0] in existing} == existing
    if r.status_code >= 400:
        error = r.json()["error"]
        assert error["type"] and error["message"]
        assert after.differences(before) == []
        assert fake_payletter.calls[calls_before:] == []
    else:  # a valid order (the strategies do make some): one new order, or a replay
        assert r.status_code in (200, 201), r.text
        assert len(after.orders) - len(before.orders) <= 1


# ---- a genuinely signed result with hostile extras --------------------------------------

EXTRA_FIELDS = ["cid", "pay_info", "card_info", "install_month", "transaction_date",
                "domestic_flag", "taxfree_amount", "tax_amount", "account_no", "account_name",
                "account_holder", "bank_code", "bank_name", "issue_tid", "expire_date",
                "expire_time", "cash_receipt", "service_name", "product_name", "user_name",
                "custom_parameter", "disposable_cup_deposit"]


@budget(ci=30, full=600)
@given(data=st.data())
async def test_a_signed_result_with_hostile_extra_fields_is_applied_or_refused_cleanly(
    data: st.DataObject, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
    browser: httpx.AsyncClient, fake_payletter: FakePayletter, engine: AsyncEngine,
) -> None:
    """payhash covers user_id, amount and tid only: everything else in a verified result
    (and in the buyer's return, which the buyer can edit) is still untrusted text."""
    order = await create_order(shop)
    extras = data.draw(st.fixed_dictionaries(
        {}, optional={name: st.one_of(hostile_text, huge_int, junk) for name in EXTRA_FIELDS}),
        label="extras")
    via = data.draw(st.sampled_from(["callback", "return"]), label="via")
    delivery_id = await last_delivery_id(engine)
    if via == "callback":
        body = callback_body(order) | extras
        r = await payletter_peer.post("/payletter/callback", content=json.dumps(body).encode(),
                                      headers={"content-type": "application/json"})
        assert r.status_code < 500, (r.status_code, r.text)
        applied = r.json()["code"] == 0
    else:
        body = return_fields(order) | extras
        return_url = path_of(sent_request(fake_payletter, order["order_no"])["return_url"])
        r = await browser.post(return_url, content=json.dumps(body).encode(),
                               headers={"content-type": "application/json"})
        assert r.status_code in (303, 400), (r.status_code, r.text)
        applied = r.status_code == 303 and "outcome=applied" in r.headers["location"]
    [(outcome, _)] = await delivery_outcomes_since(engine, delivery_id)
    assert outcome in ("applied", "rejected"), outcome
    status = await scalar(engine, "SELECT status FROM orders WHERE order_no = :no",
                          no=order["order_no"])
    assert status == ("paid" if applied else "pending")
    detail = await shop.get(f"/orders/{order['order_no']}")
    assert detail.status_code == 200, detail.text
