"""Operators list stored deliveries (GET /deliveries, `deliveries list`): newest first,
filtered, paged, and never with the raw body (payhash, billkey) or the signed query."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from click.testing import CliRunner

from app.cli import CliContext, cli
from tests.factories import callback_body, create_order
from tests.support import make_settings

ACK = {"code": 0, "message": ""}


async def deliver(payletter: httpx.AsyncClient, body: dict[str, Any]) -> int:
    code: int = (await payletter.post("/payletter/callback", json=body)).json()["code"]
    return code


async def three_deliveries(shop: httpx.AsyncClient, payletter: httpx.AsyncClient
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """An applied callback, its duplicate, and a forged one for another order (401)."""
    paid, other = await create_order(shop), await create_order(shop)
    assert await deliver(payletter, callback_body(paid)) == 0
    assert await deliver(payletter, callback_body(paid)) == 0
    assert await deliver(payletter, callback_body(other, payhash="0" * 64)) == 401
    return paid, other


async def test_operators_see_the_newest_deliveries_first_without_their_raw_bodies(
    shop: httpx.AsyncClient, ops: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
) -> None:
    paid, other = await three_deliveries(shop, payletter_peer)
    r = await ops.get("/deliveries")
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [(d["order_no"], d["outcome"], d["response_code"]) for d in rows] == [
        (other["order_no"], "rejected", 401), (paid["order_no"], "duplicate", 0),
        (paid["order_no"], "applied", 0)]
    assert rows[0]["id"] > rows[1]["id"] > rows[2]["id"]
    assert rows[0]["verification"] == "payhash_bad" and rows[0]["detail"]
    assert not {"raw_body", "query_string", "peer_addr"} & set(rows[0])
    assert callback_body(paid)["payhash"] not in r.text  # the evidence stays in the table


async def test_filters_and_pages_walk_every_delivery_once(
    shop: httpx.AsyncClient, ops: httpx.AsyncClient, payletter_peer: httpx.AsyncClient,
) -> None:
    paid, _ = await three_deliveries(shop, payletter_peer)

    async def ids(**params: Any) -> list[int]:
        r = await ops.get("/deliveries", params=params)
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()]

    everything = await ids()
    assert len(everything) == 3
    assert len(await ids(unacknowledged="true")) == 1
    assert await ids(outcome="rejected") == await ids(unacknowledged="true")
    assert len(await ids(order_no=paid["order_no"])) == 2
    assert await ids(kind="return") == []
    walked, before = [], None
    while page := await ids(limit=1, **({"before_id": before} if before else {})):
        walked += page
        before = page[-1]
    assert walked == everything


async def test_a_bad_filter_is_a_clear_4xx_and_the_shop_token_is_refused(
    ops: httpx.AsyncClient, shop: httpx.AsyncClient,
) -> None:
    for params in ({"outcome": "paid"}, {"kind": "webhook"}, {"limit": 0},
                   {"limit": 1001}, {"before_id": 0}, {"before_id": 2**63},
                   {"order_no": "x" * 65}):
        r = await ops.get("/deliveries", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["message"], r.text
    assert (await shop.get("/deliveries")).status_code == 403


async def test_the_cli_lists_the_same_deliveries(
    database_url: str, shop: httpx.AsyncClient, ops: httpx.AsyncClient,
    payletter_peer: httpx.AsyncClient,
) -> None:
    _, other = await three_deliveries(shop, payletter_peer)
    obj = CliContext(settings=make_settings(database_url))

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(cli, ["deliveries", "list", *args], obj=obj,
                                    catch_exceptions=False)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    as_json = json.loads(await asyncio.to_thread(invoke, "--json"))
    api = (await ops.get("/deliveries")).json()
    assert [d["id"] for d in as_json] == [d["id"] for d in api]
    text = await asyncio.to_thread(invoke, "--unacknowledged")
    assert f"#{api[0]['id']}" in text and other["order_no"] in text and "rejected" in text
    assert "1 delivery" in text
    paged = await asyncio.to_thread(invoke, "--limit", "2")
    assert f"next page: --before-id {api[1]['id']}" in paged
