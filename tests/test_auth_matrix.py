"""Every route of the real app, walked from `app.routes`: who may call it is checked for all.

Which routes are operator-only is read from their dependencies (`require_ops`,
`require_shop`, `ops_page_caller`), not from a list, so a new route is covered the day it
is added, and a new route without any auth dependency fails here until it gets one (or is
added to PUBLIC on purpose).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from app.kit.deps import caller_role, order_creator, require_ops, require_shop
from app.ops.endpoints import ops_page_caller
from tests.support import client_for

# Open to anyone on purpose: health and metrics, Payletter's own calls and the buyer's
# browser (they carry their own proof), the sim-only demo shop, and the sign-in form.
PUBLIC = re.compile(r"^/(healthz|readyz|metrics|payletter/.*|demo(/.*)?|ops/login)$")


def _calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    calls: frozenset[Callable[..., Any]]

    @property
    def url(self) -> str:
        return re.sub(r"\{[^}]+\}", "T1", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: FastAPI) -> list[Endpoint]:
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue  # the framework's own /docs and /openapi.json
        calls = frozenset(_calls(route.dependant))
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append(Endpoint(method, route.path, calls))
    return found


async def request(client: httpx.AsyncClient, endpoint: Endpoint) -> httpx.Response:
    body: dict[str, Any] = {}
    if endpoint.method != "GET":
        body = ({"data": {"csrf": "x"}} if endpoint.path.startswith("/ops")
                else {"json": {}})
    return await client.request(endpoint.method, endpoint.url, **body)


def test_the_walk_finds_the_routes_it_should(gateway_app: FastAPI) -> None:
    found = {str(e) for e in endpoints(gateway_app)}
    for expected in ("GET /orders", "POST /orders/{order_no}/cancel", "GET /ops",
                     "POST /ops/orders/{order_no}/cancel", "GET /ops/login", "GET /healthz",
                     "POST /webhooks/events/replay-dead"):
        assert expected in found
    assert len(found) > 30


async def test_every_api_route_needs_a_token_and_operator_routes_the_ops_token(
    gateway_app: FastAPI,
) -> None:
    checked, ops_only = 0, 0
    async with (
        client_for(gateway_app) as anonymous,
        client_for(gateway_app, authorization="Bearer not-a-token") as wrong,
        client_for(gateway_app, authorization="Basic b3BzOm9wcw==") as other_scheme,
        client_for(gateway_app, authorization="Bearer shop-token-for-tests") as shop,
        client_for(gateway_app, authorization="Bearer ops-token-for-tests") as ops,
    ):
        for endpoint in endpoints(gateway_app):
            if PUBLIC.match(endpoint.path) or endpoint.path.startswith("/ops"):
                continue
            # order_creator: the shop token, or (no token at all) a signed order intent
            assert caller_role in endpoint.calls or order_creator in endpoint.calls, (
                f"{endpoint} has no auth dependency: add ShopDep/ReaderDep/OpsDep, or make it "
                "public on purpose in PUBLIC")
            r = await request(anonymous, endpoint)
            assert r.status_code == 401, f"{endpoint} without a token: {r.status_code}"
            assert r.headers.get("www-authenticate") == "Bearer"
            assert (await request(other_scheme, endpoint)).status_code == 401, str(endpoint)
            r = await request(wrong, endpoint)
            assert r.status_code == 403, f"{endpoint} with a wrong token: {r.status_code}"
            if require_ops in endpoint.calls:
                r = await request(shop, endpoint)
                assert r.status_code == 403, f"{endpoint} (ops only) took the shop token"
                ops_only += 1
            if require_shop in endpoint.calls or order_creator in endpoint.calls:
                r = await request(ops, endpoint)
                assert r.status_code == 403, f"{endpoint} (shop only) took the ops token"
            checked += 1
    assert checked >= 15 and ops_only >= 8  # the walk found them (see the first test)


async def test_every_ops_page_route_needs_a_session_or_the_ops_token(
    gateway_app: FastAPI,
) -> None:
    checked = 0
    async with (
        client_for(gateway_app) as anonymous,
        client_for(gateway_app, authorization="Bearer not-a-token") as wrong,
        client_for(gateway_app, authorization="Bearer shop-token-for-tests") as shop,
    ):
        for endpoint in endpoints(gateway_app):
            if not endpoint.path.startswith("/ops") or PUBLIC.match(endpoint.path):
                continue
            assert ops_page_caller in endpoint.calls, f"{endpoint} has no ops page guard"
            r = await request(anonymous, endpoint)
            if endpoint.method == "GET":
                assert r.status_code == 303, f"{endpoint} without a session: {r.status_code}"
                assert r.headers["location"].startswith("/ops/login?next=")
            else:
                assert r.status_code == 403, f"{endpoint} without a session: {r.status_code}"
            for client in (wrong, shop):
                r = await request(client, endpoint)
                assert r.status_code == 403, f"{endpoint} took {client.headers['authorization']}"
                assert "content-security-policy" in r.headers
            checked += 1
    assert checked >= 6


@pytest.mark.parametrize("path", ["/healthz", "/ops/login"])
async def test_public_routes_stay_open(gateway_app: FastAPI, path: str) -> None:
    async with client_for(gateway_app) as anonymous:
        assert (await anonymous.get(path)).status_code == 200
