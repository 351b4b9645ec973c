"""Request ids, JSON logs, metrics that move as they should, and no secret in any log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import REGISTRY
from app.observability import REQUEST_ID, JsonFormatter, RequestIdFilter
from simulator.config import Merchant, SimConfig
from tests.factories import callback_body, create_order
from tests.sim_harness import SIM_BASE, sim_gateway
from tests.support import client_for


async def test_every_answer_carries_a_request_id_and_a_sane_given_one_is_kept(
    shop: httpx.AsyncClient,
) -> None:
    fresh = await shop.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    given = await shop.get("/healthz", headers={"X-Request-ID": "shop-req-42"})
    assert given.headers["x-request-id"] == "shop-req-42"
    hostile = await shop.get("/healthz", headers={"X-Request-ID": "x\r\nSet-Cookie: a=b"})
    assert hostile.headers["x-request-id"] != "x\r\nSet-Cookie: a=b"
    assert "set-cookie" not in hostile.headers


def test_json_log_lines_carry_the_request_id_and_extra_fields() -> None:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, "paid %s", ("A1",), None)
    record.order_no = "A1"
    token = REQUEST_ID.set("req-7")
    try:
        RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-7" and line["message"] == "paid A1"
    assert line["order_no"] == "A1" and line["level"] == "info"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_scripted_set_of_callbacks_moves_each_counter_by_the_expected_amount(
    gateway_app: Any, shop: httpx.AsyncClient, payletter_peer: httpx.AsyncClient
) -> None:
    names = {
        "applied": ("gateway_deliveries_total", {"kind": "callback", "outcome": "applied"}),
        "duplicate": ("gateway_deliveries_total", {"kind": "callback", "outcome": "duplicate"}),
        "rejected": ("gateway_deliveries_total", {"kind": "callback", "outcome": "rejected"}),
        "unknown": ("gateway_deliveries_total",
                    {"kind": "callback", "outcome": "unknown_order"}),
        "dupes": ("gateway_duplicate_deliveries_total", {"kind": "callback"}),
        "bad_hash": ("gateway_verification_failures_total",
                     {"kind": "callback", "verification": "payhash_bad"}),
        "forbidden": ("gateway_forbidden_sources_total", {"kind": "callback"}),
        "latency": ("gateway_delivery_seconds_count", {"kind": "callback"}),
        "api": ("gateway_payletter_call_seconds_count",
                {"endpoint": "v1.0/payments/request", "status": "200"}),
    }
    before = {key: sample(name, **labels) for key, (name, labels) in names.items()}
    order = await create_order(shop)  # one payments/request
    body = callback_body(order)
    await payletter_peer.post("/payletter/callback", json=body)  # applied
    for _ in range(2):
        await payletter_peer.post("/payletter/callback", json=body)  # duplicates
    await payletter_peer.post("/payletter/callback", json=body | {"payhash": "0" * 64})
    ghost = {"order_no": "GHOST", "user_id": "u", "amount": 1000, "pgcode": "creditcard"}
    await payletter_peer.post("/payletter/callback", json=callback_body(ghost))
    async with client_for(gateway_app, peer="127.0.0.9") as stranger:
        await stranger.post("/payletter/callback", json=body)  # forbidden: not counted above
    after = {key: sample(name, **labels) for key, (name, labels) in names.items()}
    moved = {key: after[key] - before[key] for key in names}
    assert moved == {"applied": 1, "duplicate": 2, "rejected": 1, "unknown": 1, "dupes": 2,
                     "bad_hash": 1, "forbidden": 1, "latency": 5, "api": 1}
    scraped = (await shop.get("/metrics")).text
    assert 'gateway_orders{status="paid"} 1.0' in scraped


# ---- secrets never leave ------------------------------------------------------------------

MERCHANT = Merchant(client_id="shop_live1", payment_key="UExLRVktUEFZTUVOVC1zM2NyM3Q=",
                    search_key="UExLRVktU0VBUkNILXMzY3IzdA==", name="secret test shop")
SHOP_TOKEN = "shop-token-S3CRET-7f1e9a"
OPS_TOKEN = "ops-token-S3CRET-22c4b0"
WEBHOOK_SECRET = "whsec_c2VjcmV0LXdlYmhvb2sta2V5LWZvci10ZXN0cw=="


@pytest.fixture
async def secret_gateway(database_url: str, engine: AsyncEngine
                         ) -> AsyncIterator[tuple[Any, list[httpx.Response]]]:
    sim_config = SimConfig(public_url=SIM_BASE, callback_interval=0.05, merchants=(MERCHANT,))
    async with sim_gateway(
        database_url, sim_config=sim_config,
        payletter_client_id=MERCHANT.client_id, payletter_payment_key=MERCHANT.payment_key,
        payletter_search_key=MERCHANT.search_key, shop_api_token=SHOP_TOKEN,
        ops_api_token=OPS_TOKEN, shop_webhook_url="http://shop.test/hooks",
        shop_webhook_secret=WEBHOOK_SECRET, webhook_poll_seconds=0.01,
    ) as gw:
        gw.shop.headers["authorization"] = f"Bearer {SHOP_TOKEN}"
        gw.ops.headers["authorization"] = f"Bearer {OPS_TOKEN}"
        yield gw, []


async def test_no_secret_appears_in_any_log_line_or_answer(
    secret_gateway: tuple[Any, list[httpx.Response]], caplog: pytest.LogCaptureFixture
) -> None:
    gw, answers = secret_gateway
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="app")
    caplog.set_level(logging.DEBUG, logger="simulator")

    async def keep(response: httpx.Response) -> httpx.Response:
        answers.append(response)
        return response

    order = await gw.create_order(amount=12000, autopay_flag="Y")
    result = await gw.pay(order)
    billkey = result["return_fields"].get("billkey", "")
    payhash = result["return_fields"]["payhash"]
    for _ in range(100):
        if (await gw.order(order["order_no"]))["status"] == "paid":
            break
        await asyncio.sleep(0.01)
    no = order["order_no"]
    await keep(await gw.ops.get(f"/orders/{no}"))
    await keep(await gw.ops.get("/orders", params={"status": "paid"}))
    await keep(await gw.ops.get("/orders", params={"format": "csv"}))
    await keep(await gw.ops.post(f"/orders/{no}/cancel", json={"amount": 1000}))
    await keep(await gw.ops.post(f"/orders/{no}/sync"))
    await keep(await gw.ops.get(f"/orders/{no}/receipt"))
    await keep(await gw.shop.get("/billing/billkeys", params={"user_id": order["user_id"]}))
    await keep(await gw.ops.get("/webhooks/events"))
    await keep(await gw.ops.get("/metrics"))
    await keep(await gw.ops.get("/ops", headers={"authorization": f"Bearer {OPS_TOKEN}"}))
    await keep(await gw.ops.get(f"/ops/orders/{no}",
                                headers={"authorization": f"Bearer {OPS_TOKEN}"}))
    await keep(await gw.shop.post("/orders", json={"pgcode": "creditcard", "amount": 1}))
    await keep(await gw.browser.post("/payletter/callback", json={"x": 1}))  # forbidden
    await keep(await gw.ops.get("/orders", headers={"authorization": "Bearer wrong"}))

    secrets = {"payment key": MERCHANT.payment_key, "search key": MERCHANT.search_key,
               "shop token": SHOP_TOKEN, "ops token": OPS_TOKEN,
               "webhook secret": WEBHOOK_SECRET, "webhook key": WEBHOOK_SECRET[6:],
               "payhash": payhash}
    if billkey:
        secrets["billkey"] = billkey
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.__dict__}" for r in caplog.records)
    texts = logs + "\n".join(f"{a.headers}\n{a.text}" for a in answers)
    leaked = [name for name, value in secrets.items() if value and value in texts]
    assert leaked == []
    assert len(caplog.records) > 20  # the scan read real logs
    assert billkey, "the first autopay payment should carry a billkey"
