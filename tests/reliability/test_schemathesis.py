"""Schemathesis over the app's whole OpenAPI schema (issue 8, item 4).

Every operation the schema lists gets schema-valid and schema-violating requests, with
the real tokens (the shop's where only the shop may go, the operators' elsewhere) and
Payletter's address for the callback, so they reach real code: the service runs against
the in-process Payletter simulator (nothing leaves the process), on SQLite and PostgreSQL.

Asserted for every answer: no 5xx; its status is one the schema documents for the
operation; the content type, headers and body match what the schema declares for that
status (every error of the API is declared with the one error shape); and a request that
violates the schema is refused.

Why not `schemathesis.openapi.from_asgi(...)` + `case.call()`: its ASGI transport runs the
app on an event loop of its own in another thread and starts the app's lifespan there, so
the database engine would live on a loop the test fixtures can't share, and each test
could not run against both databases. The schema is the app's own (`app.openapi()`), the
cases are Schemathesis's, and they are sent in-process through httpx's ASGI transport.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import schemathesis
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import given, reject
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.kit.deps import order_creator, require_shop
from app.main import create_app
from tests.reliability.fuzz_support import budget
from tests.sim_harness import SimGateway, sim_gateway
from tests.support import PAYLETTER_IP, emptied_after, make_settings, scalar

_APP = create_app(make_settings("sqlite+aiosqlite:///:memory:"))  # for its schema and routes
SCHEMA = schemathesis.openapi.from_dict(_APP.openapi())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
CHECKS = [content_type_conformance, response_headers_conformance, response_schema_conformance,
          status_code_conformance]
BROWSER_PAGES = {"POST /payletter/return", "GET /payletter/cancel", "POST /payletter/cancel"}


def _calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _shop_only() -> set[str]:
    """Operations that take the shop token, read from their dependencies (as the auth
    matrix does), so a new shop route is called with the right token the day it appears."""
    labels = set()
    for route in iter_route_contexts(_APP.routes):
        if isinstance(route.original_route, APIRoute) and {require_shop, order_creator} & set(
                _calls(route.original_route.dependant)):
            labels |= {f"{method} {route.path}" for method in route.methods or ()}
    return labels


SHOP_ONLY = _shop_only()


def test_the_schema_lists_every_api_operation() -> None:
    assert len(OPERATIONS) >= 25
    for label in ("POST /orders", "GET /orders/{order_no}", "POST /payletter/callback",
                  "POST /payletter/return", "GET /payletter/cancel", "GET /metrics"):
        assert label in OPERATIONS
    assert "POST /orders" in SHOP_ONLY


@pytest.fixture(scope="module")
async def gw(database_url: str) -> AsyncIterator[SimGateway]:
    """One service + simulator for all operations of a backend (tables emptied after)."""
    async with emptied_after(database_url), sim_gateway(database_url) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def known(gw: SimGateway) -> dict[str, list[Any]]:
    """Real identifiers the generated requests sometimes use, to get past the 404s."""
    pending = await gw.create_order()
    paid = await gw.create_order(amount=5000)
    await gw.pay(paid)
    event_ids = [row["event_id"] for row in (await gw.ops.get("/webhooks/events")).json()]
    return {"order_no": [pending["order_no"], paid["order_no"]], "event_id": event_ids}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@budget(ci=10, full=150)
@given(data=st.data())
async def test_every_operation_answers_within_its_schema(
    data: st.DataObject, label: str, gw: SimGateway, known: dict[str, list[Any]],
) -> None:
    operation = OPERATIONS[label]
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]),
                     label="mode")
    case = data.draw(operation.as_strategy(generation_mode=mode), label="case")
    if case.path_parameters:
        for name, values in known.items():
            if name in case.path_parameters and values and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(values))

    kwargs = case.as_transport_kwargs(base_url="http://gateway.localhost")
    headers = {str(k): v for k, v in (kwargs.pop("headers", None) or {}).items()}
    if not label.startswith(("GET /payletter", "POST /payletter", "GET /healthz",
                             "GET /readyz", "GET /metrics")):
        token = "shop" if label in SHOP_ONLY else "ops"
        headers["authorization"] = f"Bearer {token}-token-for-tests"
    peer = PAYLETTER_IP if label == "POST /payletter/callback" else "203.0.113.7"
    body: dict[str, Any] = {}
    for name in ("json", "data", "files"):
        if name in kwargs:
            body[name] = kwargs[name]
    if isinstance(body.get("data"), bytes | str):
        body["content"] = body.pop("data")
    transport = httpx.ASGITransport(app=gw.service, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport,
                                 base_url="http://gateway.localhost") as client:
        try:
            request = client.build_request(
                kwargs["method"], kwargs["url"], headers=headers,
                params=kwargs.get("params"), cookies=kwargs.get("cookies"), **body)
        except (UnicodeEncodeError, ValueError, TypeError, httpx.InvalidURL):
            reject()  # a request no HTTP client could send
        response = await client.send(request)

    assert response.status_code < 500, (label, response.status_code, response.text)
    checks = list(CHECKS)
    if label in BROWSER_PAGES:
        # The buyer's browser is always sent on to the result page (303, by contract), a
        # refusal included: there, the refusal is the outcome named in the redirect.
        if response.status_code == 303:
            outcome = parse_qs(urlsplit(response.headers["location"]).query)["outcome"]
            assert outcome != ["error"], response.headers["location"]
            if mode is GenerationMode.NEGATIVE:
                assert outcome != ["applied"], response.headers["location"]
    elif mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    case.validate_response(response, checks=checks)
    engine = gw.service.state.gateway.engine
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE outcome = 'error'") == 0
