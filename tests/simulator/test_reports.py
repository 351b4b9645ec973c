"""transaction/list (both date_type meanings), cash receipts and receipt info."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simulator.helpers import PAY_TEST_SEARCH_KEY, SHOP, Sim

LIST_ROW_KEYS = {
    "pgcode", "user_id", "user_name", "tid", "cid", "amount", "taxfree_amount", "tax_amount",
    "order_no", "product_name", "status_code", "transaction_date", "cancel_date",
}


async def listing(sim: Sim, day: str, date_type: str, **extra: str) -> dict[str, Any]:
    response = await sim.call(
        "GET", "v1.0/payments/transaction/list", key=PAY_TEST_SEARCH_KEY,
        params={"client_id": "pay_test", "date": day, "date_type": date_type, **extra},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def cancel(sim: Sim, tid: str, amount: int | None = None) -> httpx.Response:
    body = {"pgcode": "creditcard", "client_id": "pay_test", "user_id": "buyer01", "tid": tid,
            "ip_addr": "127.0.0.1"}
    if amount is None:
        return await sim.call("POST", "v1.0/payments/cancel", json=body)
    return await sim.call("POST", "v1.0/payments/cancel/partial", json={**body, "amount": amount})


async def scenario(sim: Sim) -> dict[str, str]:
    """Day 1 (KST): A paid (cancelled day 2), B paid (partially cancelled day 2), C paid.
    Day 2: D paid. Also an unpaid request, which never lists."""
    await sim.set_clock("2024-09-14T17:25:36+09:00")
    _, a = await sim.paid(order_no="A", amount=1000)
    _, b = await sim.paid(order_no="B", amount=2000)
    _, c = await sim.paid(order_no="C", amount=3000, pgcode="mobile")
    await sim.request_payment(order_no="unpaid")
    await sim.set_clock("2024-09-18T09:52:29+09:00")
    assert (await cancel(sim, a["tid"])).status_code == 200
    assert (await cancel(sim, b["tid"], 500)).status_code == 200
    _, d = await sim.paid(order_no="D", amount=4000)
    return {"A": a["tid"], "B": b["tid"], "C": c["tid"], "D": d["tid"]}


async def test_transaction_date_type_lists_that_days_payments_in_their_current_state(
    sim: Sim,
) -> None:
    tids = await scenario(sim)
    day1 = await listing(sim, "20240914", "transaction")
    assert day1["total_count"] == 3
    rows = {row["order_no"]: row for row in day1["list"]}
    assert set(rows["A"]) == LIST_ROW_KEYS
    assert (rows["A"]["status_code"], rows["A"]["amount"]) == (1, 1000)
    assert rows["A"]["cancel_date"] == "2024-09-18 09:52:29"
    assert rows["A"]["transaction_date"] == "2024-09-14 17:25:36"
    assert (rows["B"]["status_code"], rows["B"]["amount"]) == (2, 500)
    assert (rows["C"]["status_code"], rows["C"]["amount"], rows["C"]["cancel_date"]) == (
        0, 3000, ""
    )
    assert rows["A"]["tid"] == tids["A"]
    day2 = await listing(sim, "20240918", "transaction")
    assert [row["order_no"] for row in day2["list"]] == ["D"]


async def test_settle_date_type_lists_approvals_by_payment_day_and_cancels_by_cancel_day(
    sim: Sim,
) -> None:
    await scenario(sim)
    day1 = await listing(sim, "20240914", "settle")
    assert [(r["order_no"], r["status_code"], r["amount"]) for r in day1["list"]] == [
        ("A", 0, 1000), ("B", 0, 2000), ("C", 0, 3000)
    ]
    day2 = await listing(sim, "20240918", "settle")
    assert day2["total_count"] == 3
    assert sorted((r["order_no"], r["status_code"], r["amount"]) for r in day2["list"]) == [
        ("A", 1, 1000), ("B", 2, 500), ("D", 0, 4000)
    ]


async def test_list_filters_by_pgcode_and_judges_the_date_in_korea_time(sim: Sim) -> None:
    await scenario(sim)
    mobile = await listing(sim, "20240914", "transaction", pgcode="mobile")
    assert [r["order_no"] for r in mobile["list"]] == ["C"]
    await sim.set_clock("2024-09-19T15:30:00+00:00")  # 00:30 KST on the 20th
    await sim.paid(order_no="late-night")
    assert (await listing(sim, "20240919", "transaction"))["total_count"] == 0
    assert (await listing(sim, "20240920", "transaction"))["total_count"] == 1


async def test_list_query_validation(sim: Sim) -> None:
    for params, code in (
        ({"date": "2024914", "date_type": "transaction"}, 2007),
        ({"date": "20241332", "date_type": "transaction"}, 2007),
        ({"date": "20240914", "date_type": "other"}, 2007),
        ({"date": "20240914"}, 2001),
    ):
        response = await sim.call(
            "GET", "v1.0/payments/transaction/list", key=PAY_TEST_SEARCH_KEY,
            params={"client_id": "pay_test", **params},
        )
        assert (response.status_code, response.json()["code"]) == (406, code), params


async def test_cash_receipt_issue_returns_a_receipt_page_on_the_simulator(sim: Sim) -> None:
    _, fields = await sim.paid(pgcode="banktransfer", amount=5000)
    response = await sim.call(
        "POST", f"v1.0/cashreceipt/issue/{fields['tid']}",
        json={"client_id": "pay_test", "type": "1", "tax_flag": "N",
              "return_url": f"{SHOP}/receipt-done"},
    )
    assert response.status_code == 200, response.text
    url = response.json()["receipt_url"]
    assert url.startswith(f"http://sim.test/receipt/cash/{fields['tid']}?")
    page = await sim.client.get(url)
    assert page.status_code == 200 and 'id="issue"' in page.text
    issued = await sim.client.post(url)
    assert 'id="issued"' in issued.text and f'href="{SHOP}/receipt-done"' in issued.text


async def test_cash_receipt_is_refused_for_card_payments_and_unknown_tids(sim: Sim) -> None:
    _, fields = await sim.paid()
    body = {"client_id": "pay_test", "return_url": f"{SHOP}/r"}
    card = await sim.call("POST", f"v1.0/cashreceipt/issue/{fields['tid']}", json=body)
    assert (card.status_code, card.json()["code"]) == (406, 5000)
    unknown = await sim.call("POST", "v1.0/cashreceipt/issue/tpay_test-0", json=body)
    assert unknown.json()["code"] == 2010
    missing = await sim.call("POST", f"v1.0/cashreceipt/issue/{fields['tid']}",
                             json={"client_id": "pay_test"})
    assert missing.json()["code"] == 2001


async def test_receipt_info_uses_the_search_key_and_renders_a_page(sim: Sim) -> None:
    _, fields = await sim.paid(product_name="영수증 상품")
    tid = fields["tid"]
    # The vendor's own sample puts a slash before the query string.
    response = await sim.call(
        "GET", f"v1.0/receipt/info/{tid}/", key=PAY_TEST_SEARCH_KEY,
        params={"client_id": "pay_test"},
    )
    assert response.status_code == 200, response.text
    url = response.json()["receipt_url"]
    assert url.startswith(f"http://sim.test/receipt/info/{tid}?id=")
    page = await sim.client.get(url)
    assert page.status_code == 200 and "영수증 상품" in page.text and tid in page.text
    wrong_key = await sim.call(
        "GET", f"v1.0/receipt/info/{tid}", params={"client_id": "pay_test"}
    )
    assert wrong_key.status_code == 403
    forged = await sim.client.get(f"receipt/info/{tid}?id=guess")
    assert forged.status_code == 404
