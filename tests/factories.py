"""Plain factory functions: orders through the API, results as Payletter sends them."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.kit.security import sign_link
from app.settings import PUBLIC_TEST_MERCHANT
from tests.fake_payletter import FakePayletter
from tests.payletter_vectors import VENDOR_CALLBACK_EXAMPLE, payhash

_numbers = itertools.count(1)


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pgcode": "creditcard",
        "amount": 1000,
        "product_name": "테스트상품",
        "user_id": "test_user_id",
        "user_name": "테스터",
        "order_no": f"T{next(_numbers):06d}",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def create_order(shop: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await shop.post("/orders", json=order_body(**overrides))
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def callback_body(order: dict[str, Any], *, tid: str | None = None, **overrides: Any
                  ) -> dict[str, Any]:
    """The vendor's callback example, made to match `order`, with a correct payhash."""
    body = dict(VENDOR_CALLBACK_EXAMPLE)
    body.update(
        order_no=order["order_no"],
        user_id=order["user_id"],
        amount=order["amount"],
        pgcode=order["pgcode"],
        tid=tid or f"tpay_test-{order['order_no']}",
    )
    body.update(overrides)
    if "payhash" not in overrides:
        body["payhash"] = payhash(body["user_id"], body["amount"], body["tid"])
    return body


def return_fields(order: dict[str, Any], **overrides: Any) -> dict[str, str]:
    """A successful return as the browser posts it: form fields, all strings."""
    body = callback_body(order, **overrides)
    body.pop("cash_receipt", None)
    fields = {"code": "0", "message": "success"} | {k: str(v) for k, v in body.items()}
    return {k: v for k, v in fields.items() if v is not None}


def sent_request(fake: FakePayletter, order_no: str) -> dict[str, Any]:
    """The payments/request body the service sent Payletter for `order_no`."""
    bodies = [b for b in fake.calls_to("v1.0/payments/request") if b["order_no"] == order_no]
    assert bodies, f"no payments/request for {order_no}"
    return bodies[-1]


def path_of(url: str) -> str:
    """'/payletter/return?order_no=…&sig=…' from the absolute URL the service built."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def link_query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def result_query(location: str) -> dict[str, str]:
    """The result link's query without its signature, which must be there (and right for
    pay_test's key) exactly when the order's status is shown."""
    query = link_query(location)
    expected = sign_link(PUBLIC_TEST_MERCHANT["payment_key"], "result", query["order_no"])
    assert query.pop("sig", None) == (expected if "status" in query else None), location
    return query
