"""/openapi.json is a contract a shop can generate a client from: every operation is called
for real, and every answer is checked against what the schema documents for its status.

Each client of the service here carries a response hook (`Contract.check`): an answer with
a status its operation doesn't document, another content type, or a JSON body its
documented schema refuses (a field more or missing, a wrong type, a null where none may
be, a timestamp that is no date-time) fails the test where the request was made. The
scenarios reach every operation of the schema with a success and with at least one of its
documented errors, and the test asserts that they did: a route added without a scenario
here fails it. Routes declare models for their answers without FastAPI re-serialising
them (`app.kit.deps.answer`), so what is checked is exactly what a shop receives.

Schemathesis (tests/reliability/test_schemathesis.py) checks the same schema with
generated inputs; this checks it with the inputs that reach every documented outcome.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema_rs
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.kit.korea_time import korea_date
from app.main import create_app
from app.settings import PUBLIC_TEST_MERCHANT
from tests.factories import callback_body, path_of
from tests.sim_harness import LoseAnswers, SimGateway, sim_gateway
from tests.support import client_for, make_settings
from tests.test_billing import AUTO_TEST, AUTO_TEST1, charge, first_payment
from tests.test_refunds import cancel, paid_order


def operations_of(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation of an OpenAPI document, by "METHOD /path"."""
    return {f"{method.upper()} {path}": operation
            for path, methods in schema["paths"].items() for method, operation in methods.items()}


SCHEMA = create_app(make_settings("sqlite+aiosqlite:///:memory:")).openapi()
OPERATIONS = operations_of(SCHEMA)
# The operations whose success is not JSON: the buyer's browser is sent on (303), the
# result page is HTML, the metrics are Prometheus' text.
NOT_JSON = {"POST /payletter/return": ("303", None), "GET /payletter/cancel": ("303", None),
            "POST /payletter/cancel": ("303", None),
            "GET /payletter/result": ("200", "text/html"), "GET /metrics": ("200", "text/plain")}
MERCHANTS = json.dumps([PUBLIC_TEST_MERCHANT, AUTO_TEST, AUTO_TEST1])
BODY_LIMIT = 4096


def _models_in(schema: dict[str, Any]) -> list[str]:
    """The component models a documented schema names (itself, its items, its variants)."""
    if "$ref" in schema:
        return [schema["$ref"].removeprefix("#/components/schemas/")]
    parts = [*([schema["items"]] if "items" in schema else []), *schema.get("anyOf", [])]
    return [name for part in parts for name in _models_in(part)]


def test_every_json_operation_documents_its_success_with_a_model() -> None:
    assert len(OPERATIONS) >= 28
    for label, operation in OPERATIONS.items():
        responses = operation["responses"]
        successes = [code for code in responses if code.startswith(("2", "3"))]
        if label in NOT_JSON:
            code, media = NOT_JSON[label]
            assert successes == [code], label
            assert list(responses[code].get("content") or {}) == ([media] if media else []), (
                label)
            continue
        assert successes and all(code.startswith("2") for code in successes), label
        for code in successes:
            content = responses[code]["content"]
            schema = content["application/json"]["schema"]
            assert _models_in(schema), f"{label} {code}: no model for its answer ({schema})"
            assert set(content) <= {"application/json", "text/csv"}, label


def test_every_documented_error_is_json_of_a_model() -> None:
    for label, operation in OPERATIONS.items():
        errors = {code: response for code, response in operation["responses"].items()
                  if code[0] in "45"}
        assert errors, f"{label} documents no error"
        for code, response in errors.items():
            assert code.isdigit(), f"{label}: {code} is a range, not a status"
            assert list(response["content"]) == ["application/json"], f"{label} {code}"
            assert _models_in(response["content"]["application/json"]["schema"]), (
                f"{label} {code}")
    assert "HTTPValidationError" not in SCHEMA["components"]["schemas"]  # not our shape


class Contract:
    """What the schema documents for each answer; which operations answered what."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.operations = operations_of(schema)
        self.heard: dict[str, set[int]] = {}
        routes = [(*label.split(" "), label) for label in self.operations]
        # Literal paths before templated ones, should two ever overlap.
        self.routes = sorted(
            ((method, re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), label)
             for method, path, label in routes),
            key=lambda route: route[1].pattern.count("[^/]+"))
        self.validators: dict[str, jsonschema_rs.Validator] = {}

    def operation(self, request: httpx.Request) -> str:
        for method, pattern, label in self.routes:
            if method == request.method and pattern.match(request.url.path):
                return label
        raise AssertionError(f"{request.method} {request.url.path} is not in the schema")

    def validator(self, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self.validators:
            document = {**schema, "components": self.schema["components"]}
            self.validators[key] = jsonschema_rs.Draft202012Validator(
                document, validate_formats=True)
        return self.validators[key]

    def check(self, response: httpx.Response) -> None:
        label = self.operation(response.request)
        status = response.status_code
        documented = self.operations[label]["responses"].get(str(status))
        assert documented is not None, (
            f"{label} answered {status}, a status its schema doesn't document: "
            f"{response.text[:300]}")
        content = documented.get("content") or {}
        media = response.headers.get("content-type", "").split(";")[0].strip() or None
        if not content:
            assert not response.content, f"{label} {status}: a body where none is documented"
        else:
            assert media in content, f"{label} {status}: {media}, documented {list(content)}"
        if media == "application/json":
            problems = [f"{'/'.join(map(str, e.instance_path)) or 'the body'}: {e.message}"
                        for e in self.validator(content[media]["schema"]).iter_errors(
                            response.json())]
            assert not problems, (f"{label} {status} answers what its schema doesn't "
                                  f"document: {problems[:5]}")
        self.heard.setdefault(label, set()).add(status)

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response)

    def unheard(self) -> dict[str, str]:
        """Operations not yet heard from with a success, or with a documented error."""
        missing = {}
        for label in self.operations:
            heard = self.heard.get(label, set())
            if not any(code < 400 for code in heard):
                missing[label] = "no success"
            elif not any(code >= 400 for code in heard):
                missing[label] = "no error"
        return missing


def test_the_check_refuses_an_undocumented_field_status_or_null() -> None:
    contract = Contract(SCHEMA)
    request = httpx.Request("GET", "http://gateway.localhost/healthz")
    contract.check(httpx.Response(200, json={"status": "ok"}, request=request))
    with pytest.raises(AssertionError, match="'uptime' was unexpected"):
        contract.check(httpx.Response(200, json={"status": "ok", "uptime": 3},
                                      request=request))
    with pytest.raises(AssertionError, match="418, a status its schema doesn't document"):
        contract.check(httpx.Response(418, json={"status": "ok"}, request=request))
    receipt = httpx.Request("GET", "http://gateway.localhost/orders/A1/receipt")
    with pytest.raises(AssertionError, match="receipt_url: null is not of type"):
        contract.check(httpx.Response(200, json={"receipt_url": None}, request=receipt))
    with pytest.raises(AssertionError, match="not in the schema"):
        contract.check(httpx.Response(200, request=httpx.Request(
            "GET", "http://gateway.localhost/nowhere")))


class Unreachable(LoseAnswers):
    """Payletter through the simulator; a path lost with `reaches_payletter=False` can't
    be connected to (never sent), one lost otherwise times out after reaching it."""

    def __init__(self) -> None:
        super().__init__(httpx.AsyncHTTPTransport())  # sim_gateway puts the simulator here

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.paths.get(request.url.path.lstrip("/")) is False:
            raise httpx.ConnectError("connection refused", request=request)
        return await super().handle_async_request(request)


@pytest.fixture
def payletter() -> Unreachable:
    return Unreachable()


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine, payletter: Unreachable
             ) -> AsyncIterator[SimGateway]:
    """The service and the simulator; three merchants (autopay ones too), small bodies."""
    settings = {"payletter_merchants": MERCHANTS, "max_body_bytes": BODY_LIMIT}
    async with sim_gateway(database_url, lose=payletter, **settings) as gateway:
        yield gateway


@pytest.fixture
async def anonymous(gw: SimGateway) -> AsyncIterator[httpx.AsyncClient]:
    """No token, from 127.0.0.1: Payletter's callback address in the sim harness."""
    async with client_for(gw.service) as client:
        yield client


@pytest.fixture
def contract(gw: SimGateway, anonymous: httpx.AsyncClient) -> Contract:
    """Every answer the service gives these clients (and gw's own) is checked."""
    checked = Contract(gw.service.openapi())
    assert checked.schema == SCHEMA  # the app under test documents what SCHEMA does
    for client in (gw.shop, gw.ops, gw.browser, anonymous):
        client.event_hooks["response"].append(checked.hook)
    return checked


async def expect(status: int, request: Awaitable[httpx.Response]) -> httpx.Response:
    """The answer had `status` (the hook checked it against the schema already)."""
    answer = await request
    assert answer.status_code == status, (str(answer.request.url), answer.status_code,
                                          answer.text[:500])
    return answer


async def oversized(client: httpx.AsyncClient, method: str, url: str) -> None:
    """A body over MAX_BODY_BYTES: every route answers 413 before anything else."""
    await expect(413, client.request(method, url, content=b"x" * (BODY_LIMIT + 1)))


async def fault(gw: SimGateway, endpoint: str, status: int, *, times: int | None = 1) -> None:
    """Payletter (the simulator) answers its `endpoint` with `status` (406: a refusal)."""
    error: dict[str, Any] = {"status": status, "code": 4001 if status == 406 else 999}
    if times is not None:
        error["times"] = times
    r = await gw.sim.post("/_sim/faults", json={"api_errors": {endpoint: error}})
    assert r.status_code == 200, r.text


async def no_faults(gw: SimGateway) -> None:
    assert (await gw.sim.delete("/_sim/faults")).status_code == 200


# ---- the scenarios: every operation, with a success and its errors ----------------------


async def orders(gw: SimGateway, anonymous: httpx.AsyncClient) -> dict[str, Any]:
    order = await gw.create_order(amount=5000)
    terms = {"pgcode": "creditcard", "amount": 1000, "product_name": "p", "user_id": "u1"}
    await expect(409, gw.shop.post("/orders", json=terms | {"order_no": order["order_no"]}))
    await expect(401, anonymous.post("/orders", json=terms))
    await expect(422, gw.shop.post("/orders", json={"pgcode": "creditcard"}))
    await fault(gw, "payments/request", 500)
    await expect(502, gw.shop.post("/orders", json=terms))
    await expect(200, gw.shop.get("/orders"))
    await expect(200, gw.shop.get("/orders", params={"totals": "false", "limit": 1}))
    await expect(200, gw.shop.get("/orders", params={"format": "csv"}))
    await expect(422, gw.shop.get("/orders", params={"colour": "red"}))
    await expect(404, gw.ops.get("/orders/NO-SUCH-ORDER"))
    await expect(200, gw.ops.post(f"/orders/{order['order_no']}/sync"))
    await expect(404, gw.ops.post("/orders/NO-SUCH-ORDER/sync"))
    return order


async def receipts(gw: SimGateway) -> None:
    order = await gw.create_order(pgcode="banktransfer", amount=5000)
    url = f"/orders/{order['order_no']}"
    await expect(409, gw.shop.post(f"{url}/cash-receipt", json={}))
    await expect(409, gw.ops.get(f"{url}/receipt"))
    await gw.pay(order)
    await expect(200, gw.shop.post(f"{url}/cash-receipt", json={"type": "1", "tax_flag": "N"}))
    await expect(422, gw.shop.post(f"{url}/cash-receipt", json={"type": "9"}))
    await expect(200, gw.ops.get(f"{url}/receipt"))


async def refunds(gw: SimGateway, engine: AsyncEngine, payletter: Unreachable) -> None:
    order = await paid_order(gw, amount=10000)
    await expect(200, cancel(gw, order, {"amount": 1000}))
    await fault(gw, "payments/cancel/partial", 406)
    refused = await expect(422, cancel(gw, order, {"amount": 1000}))
    assert refused.json()["refund"]["status"] == "failed"
    await expect(422, cancel(gw, order, {"amount": 999999}))  # more than remains
    payletter.lose("v1.0/payments/cancel/partial", reaches_payletter=False)
    await expect(502, cancel(gw, order, {"amount": 1000}))
    payletter.paths.clear()
    await fault(gw, "payments/cancel/partial", 500)
    unknown = await expect(504, cancel(gw, order, {"amount": 1000}, key="r-1"))
    assert unknown.json()["refund"]["status"] == "unknown" and unknown.json()["message"]
    await expect(409, cancel(gw, order, {"amount": 1000}))  # one refund in flight at a time
    async with engine.begin() as conn:  # as if its request were still on its way
        await conn.execute(text("UPDATE refunds SET status = 'requested' "
                                "WHERE status = 'unknown'"))
    await expect(202, cancel(gw, order, {"amount": 1000}, key="r-1"))
    await expect(404, gw.ops.post("/orders/NO-SUCH-ORDER/cancel", json={}))
    detail = (await expect(200, gw.ops.get(f"/orders/{order['order_no']}"))).json()
    assert len(detail["refunds"]) == 4 and detail["audit"] and detail["deliveries"]


async def billing(gw: SimGateway) -> None:
    billkey = (await first_payment(gw))["billkey"]
    await expect(422, gw.shop.get("/billing/billkeys", params={"status": "lost"}))
    await expect(200, gw.shop.get(f"/billing/billkeys/{billkey['id']}"))
    await expect(404, gw.shop.get("/billing/billkeys/999999"))
    await expect(201, charge(gw, billkey["id"], key="c-1"))
    replayed = await expect(201, charge(gw, billkey["id"], key="c-1"))
    assert replayed.headers["idempotent-replayed"] == "true"
    await expect(404, charge(gw, 999999))
    await expect(200, gw.ops.post(f"/billing/billkeys/{billkey['id']}/revoke"))
    await expect(404, gw.ops.post("/billing/billkeys/999999/revoke"))
    await expect(409, charge(gw, billkey["id"]))
    registration = {"client_id": "auto_test1", "pgcode": "creditcard",
                    "product_name": "정기결제 등록", "user_id": "signup1"}
    await expect(201, gw.shop.post("/billing/registrations", json=registration))
    await expect(422, gw.shop.post("/billing/registrations", json={"pgcode": "creditcard"}))
    await expect(200, gw.ops.get("/billing/audit"))
    await expect(422, gw.ops.get("/billing/audit", params={"action": "refund"}))


async def payletter_calls(gw: SimGateway, anonymous: httpx.AsyncClient,
                          pending: dict[str, Any]) -> None:
    """Payletter's callback (from its address), the buyer's return, cancel and result."""
    paid = await paid_order(gw, amount=3000)
    result = callback_body(paid, tid=(await gw.order(paid["order_no"]))["tid"])
    applied = await expect(200, anonymous.post("/payletter/callback", json=result))
    assert applied.json() == {"code": 0, "message": ""}  # already applied by the return
    await expect(401, anonymous.post("/payletter/callback", json=result | {"payhash": "0"}))
    await expect(400, anonymous.post("/payletter/callback", content=b"{",
                                     headers={"content-type": "application/json"}))
    await expect(403, gw.browser.post("/payletter/callback", json=result))
    await oversized(anonymous, "POST", "/payletter/callback")

    await expect(400, gw.browser.post("/payletter/return", content=b"{",
                                      headers={"content-type": "application/json"}))
    await oversized(gw.browser, "POST", "/payletter/return")
    window = (await gw.sim.get(f"/_sim/payments/{pending['token']}")).json()
    for method in ("GET", "POST"):
        back = await expect(303, gw.browser.request(method, path_of(window["cancel_url"])))
        await oversized(gw.browser, method, "/payletter/cancel")
    await expect(200, gw.browser.get(path_of(back.headers["location"])))
    await oversized(gw.browser, "GET", "/payletter/result")


async def operators(gw: SimGateway) -> None:
    """Deliveries, the webhook outbox and reconciliations."""
    await expect(200, gw.ops.get("/deliveries"))
    await expect(422, gw.ops.get("/deliveries", params={"kind": "fax"}))
    events = (await expect(200, gw.ops.get("/webhooks/events"))).json()
    await expect(422, gw.ops.get("/webhooks/events", params={"status": "lost"}))
    await expect(200, gw.ops.post(f"/webhooks/events/{events[0]['event_id']}/replay"))
    await expect(404, gw.ops.post("/webhooks/events/evt_none/replay"))
    await expect(200, gw.ops.post("/webhooks/events/replay-dead"))
    await expect(403, gw.shop.post("/webhooks/events/replay-dead"))

    today = korea_date(datetime.now(UTC))
    run = (await expect(201, gw.ops.post("/reconciliations",
                                         json={"date": today.isoformat()}))).json()
    assert run["matched"] or run["fixed"] or run["needs_review"]
    tomorrow = (today + timedelta(days=1)).isoformat()
    await expect(422, gw.ops.post("/reconciliations", json={"date": tomorrow}))
    await fault(gw, "payments/transaction/list", 500, times=None)
    await expect(502, gw.ops.post("/reconciliations", json={}))
    await no_faults(gw)
    await expect(200, gw.ops.get("/reconciliations"))
    await expect(422, gw.ops.get("/reconciliations", params={"date": "yesterday"}))
    await expect(200, gw.ops.get(f"/reconciliations/{run['id']}"))
    await expect(404, gw.ops.get("/reconciliations/999999"))


async def health(gw: SimGateway, anonymous: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        await expect(200, anonymous.get(path))
        await oversized(anonymous, "GET", path)
    gateway = gw.service.state.gateway
    working, gateway.engine = gateway.engine, create_engine("sqlite+aiosqlite:///nowhere/x.db")
    try:  # a database that can't be opened
        await expect(503, anonymous.get("/readyz"))
    finally:
        await gateway.engine.dispose()
        gateway.engine = working


async def test_every_operation_answers_only_what_its_schema_documents(
    gw: SimGateway, engine: AsyncEngine, payletter: Unreachable,
    anonymous: httpx.AsyncClient, contract: Contract,
) -> None:
    pending = await orders(gw, anonymous)
    await receipts(gw)
    await refunds(gw, engine, payletter)
    await billing(gw)
    await payletter_calls(gw, anonymous, pending)
    await operators(gw)
    await health(gw, anonymous)
    assert contract.unheard() == {}
