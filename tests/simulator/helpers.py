"""Shared test helpers: the vendor's test keys, a request builder, a scripted receiver."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

# Published on the vendor page (test environment), copied here independently of simulator/.
PAY_TEST = "pay_test"
PAY_TEST_PAYMENT_KEY = "MTFBNTAzNTEwNDAxQUIyMjlCQzgwNTg1MkU4MkZENDA="
PAY_TEST_SEARCH_KEY = "MUI3MjM0RUExQTgyRDA1ODZGRDUyOEM4OTY2QTVCN0Y="
AUTO_TEST = "auto_test"
AUTO_TEST_PAYMENT_KEY = "NDBBREM2RjhEMENBQ0ZGODZDNkEyNEQxQUIxRTY5QUE="
AUTO_TEST_SEARCH_KEY = "QjBCMjZBNUNBMEMzRDVDNzY2NkQ2OTU3QzFEQkM2QkY="
AUTO_TEST1 = "auto_test1"
AUTO_TEST1_PAYMENT_KEY = "NUMzRDJFQzVERkRBNTQzQjY1MkUzMTQ3NThFREU2Mzg="

PAYMENT_KEYS = {
    PAY_TEST: PAY_TEST_PAYMENT_KEY,
    AUTO_TEST: AUTO_TEST_PAYMENT_KEY,
    AUTO_TEST1: AUTO_TEST1_PAYMENT_KEY,
}
SEARCH_KEYS = {PAY_TEST: PAY_TEST_SEARCH_KEY, AUTO_TEST: AUTO_TEST_SEARCH_KEY}

SHOP = "http://shop.test"


def plkey(key: str) -> dict[str, str]:
    return {"Authorization": f"PLKEY {key}"}


def expected_payhash(user_id: str, amount: int | str, tid: str, key: str) -> str:
    """sha256(user_id + amount + tid + PAYMENT key), upper-case hex, per the vendor page."""
    return hashlib.sha256(f"{user_id}{amount}{tid}{key}".encode()).hexdigest().upper()


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pgcode": "creditcard",
        "client_id": PAY_TEST,
        "user_id": "buyer01",
        "user_name": "테스터",
        "service_name": "페이레터",
        "order_no": "order-1",
        "amount": 1000,
        "product_name": "테스트상품",
        "custom_parameter": "cp=1&x=y",
        "return_url": f"{SHOP}/payletter/return?shop=1&lang=ko",
        "callback_url": f"{SHOP}/payletter/callback",
        "cancel_url": f"{SHOP}/payletter/cancel?from=window",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class Receiver:
    """A callback_url endpoint answering from a script (the last answer repeats)."""

    script: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {"code": 0})])
    received: list[dict[str, Any]] = field(default_factory=list)
    arrival_times: list[float] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    delay: float = 0.0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            self.received.append(await request.json())
            self.arrival_times.append(time.monotonic())
            self.peers.append(request.client.host if request.client else "")
            index = min(len(self.received), len(self.script)) - 1
            if self.delay:
                await asyncio.sleep(self.delay)
            status, body = self.script[index]
            if isinstance(body, str):
                return Response(body, status_code=status, media_type="text/plain")
            return JSONResponse(body, status_code=status)

        return app

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app())


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 3.0, step: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


@dataclass
class Sim:
    """A simulator under test, driven the way the product and a test would."""

    client: httpx.AsyncClient
    receiver: Receiver | None = None

    async def request_payment(self, key: str | None = None, **overrides: Any) -> dict[str, Any]:
        body = payment_body(**overrides)
        key = key or PAYMENT_KEYS[body.get("client_id", PAY_TEST)]
        response = await self.client.post(
            "v1.0/payments/request", json=body, headers=plkey(key)
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def approve(self, token: int, **body: Any) -> dict[str, Any]:
        response = await self.client.post(f"_sim/payments/{token}/approve", json=body or None)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def paid(self, **overrides: Any) -> tuple[int, dict[str, str]]:
        """Request and approve a payment; the token and the return fields."""
        token = (await self.request_payment(**overrides))["token"]
        return token, (await self.approve(token))["return_fields"]

    async def payment(self, token: int) -> dict[str, Any]:
        response = await self.client.get(f"_sim/payments/{token}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def attempts(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get("_sim/callbacks", params=params)
        return list(response.json())

    async def wait_attempts(self, count: int, timeout: float = 3.0, **params: Any) -> list[
        dict[str, Any]
    ]:
        async def enough() -> bool:
            return len(await self.attempts(**params)) >= count

        await wait_until(enough, timeout)
        return await self.attempts(**params)

    async def set_clock(self, iso: str | None) -> None:
        response = await self.client.post("_sim/clock", json={"now": iso})
        assert response.status_code == 200, response.text

    async def faults(self, **faults: Any) -> dict[str, Any]:
        response = await self.client.post("_sim/faults", json=faults)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def call(
        self, method: str, path: str, key: str | None = PAY_TEST_PAYMENT_KEY, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(plkey(key) if key else {}), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


@dataclass
class ParsedForm:
    id: str
    action: str
    method: str
    fields: dict[str, str]


def parse_forms(html: str) -> dict[str, ParsedForm]:
    """Forms by id (or by their submit button's id), with their hidden/text inputs."""
    from html.parser import HTMLParser

    forms: dict[str, ParsedForm] = {}

    class Parser(HTMLParser):
        current: ParsedForm | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {k: v or "" for k, v in attrs}
            if tag == "form":
                self.current = ParsedForm(a.get("id", ""), a.get("action", ""),
                                          a.get("method", "get").lower(), {})
            elif tag == "input" and self.current is not None and "name" in a:
                self.current.fields[a["name"]] = a.get("value", "")
            elif tag == "button" and self.current is not None and not self.current.id:
                self.current.id = a.get("id", "")

        def handle_endtag(self, tag: str) -> None:
            if tag == "form" and self.current is not None:
                forms[self.current.id] = self.current
                self.current = None

    Parser().feed(html)
    return forms


MakeSim = Callable[..., Awaitable[Sim]]  # the make_sim fixture: a simulator app, configured
