"""Every list is paged one way: `limit` (bounded per list) and `cursor`."""

from __future__ import annotations

import httpx
import pytest

LISTS = {"/deliveries": 1000, "/webhooks/events": 1000, "/reconciliations": 1000,
         "/billing/billkeys": 1000, "/billing/audit": 1000, "/orders": 500}


@pytest.mark.parametrize(("path", "largest"), LISTS.items())
async def test_a_limit_beyond_the_list_s_largest_page_is_a_422(
    ops: httpx.AsyncClient, path: str, largest: int
) -> None:
    assert (await ops.get(path, params={"limit": largest})).status_code == 200
    too_many = await ops.get(path, params={"limit": largest + 1})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["field"] == "limit"


async def test_an_id_cursor_pages_on_from_the_last_row_and_a_foreign_one_is_refused(
    ops: httpx.AsyncClient, payletter_peer: httpx.AsyncClient
) -> None:
    for _ in range(3):
        await payletter_peer.post("/payletter/callback", json={"tid": "not-a-result"})
    first = (await ops.get("/deliveries", params={"limit": 2})).json()
    rest = (await ops.get("/deliveries", params={"cursor": first[-1]["id"]})).json()
    assert len(first) == 2 and len(rest) == 1
    assert rest[0]["id"] < first[-1]["id"]
    refused = await ops.get("/deliveries", params={"cursor": "abc"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "cursor"
