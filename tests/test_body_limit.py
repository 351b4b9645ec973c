"""One body limit (MAX_BODY_BYTES) for every route, enforced before parsing or auth.

The bodies here are generators that count what the app pulled from them: a refused body
must cost at most about the limit, whatever it claims or however long it goes on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import order_body
from tests.support import PAYLETTER_IP, client_for, scalar

LIMIT = 64 * 1024  # MAX_BODY_BYTES' default
CHUNK = 8 * 1024
HUGE = 300 * 1024 * 1024


@dataclass
class CountingBody:
    """A request body of `total` bytes, produced only as the app pulls it."""

    total: int
    pulled: int = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            chunk = b" " * min(CHUNK, self.total - self.pulled)
            self.pulled += len(chunk)
            yield chunk


def _json_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"]["type"] == "payload_too_large"
    assert str(LIMIT) in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/orders", "/orders/T1/cancel"])
async def test_a_huge_declared_body_without_a_token_is_413_before_a_byte_is_read(
    gateway_app: FastAPI, path: str
) -> None:
    # Only 4 MiB really exist behind the claimed 300 MB: enough to see any reading.
    body = CountingBody(4 * 1024 * 1024)
    async with client_for(gateway_app) as anonymous:
        r = await anonymous.post(path, content=body, headers={
            "content-type": "application/json", "content-length": str(HUGE)})
    _json_413(r)  # not 401: the size is judged before anyone is authenticated
    assert body.pulled == 0


async def test_a_content_length_of_thousands_of_digits_is_413_not_a_crash(
    gateway_app: FastAPI,
) -> None:
    async with client_for(gateway_app) as anonymous:
        r = await anonymous.post("/orders", content=CountingBody(10), headers={
            "content-type": "application/json", "content-length": "9" * 5000})
    _json_413(r)


@pytest.mark.parametrize("path", ["/orders", "/orders/T1/cancel"])
async def test_a_chunked_body_over_the_limit_is_413_after_reading_at_most_the_limit(
    gateway_app: FastAPI, path: str
) -> None:
    body = CountingBody(4 * 1024 * 1024)
    async with client_for(gateway_app) as anonymous:
        r = await anonymous.post(path, content=body,
                                 headers={"content-type": "application/json"})
    _json_413(r)
    assert body.pulled <= LIMIT + CHUNK  # never more than the limit plus the chunk that crossed it


async def test_a_chunked_body_over_the_limit_is_refused_with_the_token_too(
    shop: httpx.AsyncClient,
) -> None:
    body = CountingBody(4 * 1024 * 1024)
    r = await shop.post("/orders", content=body, headers={"content-type": "application/json"})
    _json_413(r)
    assert body.pulled <= LIMIT + CHUNK


async def test_an_oversized_form_on_the_ops_page_is_refused_while_reading(
    gateway_app: FastAPI,
) -> None:
    body = CountingBody(4 * 1024 * 1024)
    async with client_for(gateway_app) as anonymous:
        r = await anonymous.post("/ops/login", content=body, headers={
            "content-type": "application/x-www-form-urlencoded"})
    _json_413(r)
    assert body.pulled <= LIMIT + CHUNK


async def test_the_callback_keeps_payletter_s_answer_shape_for_an_oversized_body(
    gateway_app: FastAPI, engine: AsyncEngine,
) -> None:
    async with client_for(gateway_app, peer=PAYLETTER_IP) as payletter:
        declared = CountingBody(LIMIT + 1)
        r = await payletter.post("/payletter/callback", content=declared, headers={
            "content-type": "application/json", "content-length": str(LIMIT + 1)})
        assert r.status_code == 413 and r.json() == {"code": 413, "message": r.json()["message"]}
        assert str(LIMIT) in r.json()["message"] and declared.pulled == 0
        chunked = CountingBody(4 * 1024 * 1024)
        r = await payletter.post("/payletter/callback", content=chunked,
                                 headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == 413
        assert chunked.pulled <= LIMIT + CHUNK
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 0


async def _padded(body: dict[str, object], size: int) -> AsyncIterator[bytes]:
    text = json.dumps(body).encode()
    padded = text[:-1] + b" " * (size - len(text)) + b"}"
    for start in range(0, len(padded), CHUNK):
        yield padded[start:start + CHUNK]


async def test_a_body_just_under_the_limit_still_works_with_or_without_a_length(
    shop: httpx.AsyncClient,
) -> None:
    chunked = await shop.post("/orders", content=_padded(order_body(), LIMIT),
                              headers={"content-type": "application/json"})
    assert chunked.status_code == 201, chunked.text
    whole = b"".join([chunk async for chunk in _padded(order_body(), LIMIT)])
    assert len(whole) == LIMIT
    declared = await shop.post("/orders", content=whole,
                               headers={"content-type": "application/json"})
    assert declared.status_code == 201, declared.text
