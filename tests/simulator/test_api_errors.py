"""Error codes and shapes: 401/998, 403/993, 405/995, 406, 500/999 flat and nested."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.simulator.helpers import (
    AUTO_TEST_PAYMENT_KEY,
    PAY_TEST_PAYMENT_KEY,
    PAY_TEST_SEARCH_KEY,
    Sim,
    payment_body,
    plkey,
)


async def test_missing_authorization_header_is_401_code_998(sim: Sim) -> None:
    response = await sim.call("POST", "v1.0/payments/request", key=None, json=payment_body())
    assert response.status_code == 401
    assert response.json() == {
        "code": 998, "message": "Authentication token is missing or incorrect."
    }


@pytest.mark.parametrize(
    "header",
    ["PLKEY not-a-key", "Bearer " + PAY_TEST_PAYMENT_KEY, PAY_TEST_PAYMENT_KEY, "PLKEY "],
)
async def test_unknown_key_or_wrong_scheme_is_401_code_998(sim: Sim, header: str) -> None:
    response = await sim.client.post(
        "v1.0/payments/request", json=payment_body(), headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json()["code"] == 998


async def test_search_key_on_a_payment_call_is_403_code_993_with_vendor_typo(sim: Sim) -> None:
    response = await sim.call(
        "POST", "v1.0/payments/request", key=PAY_TEST_SEARCH_KEY, json=payment_body()
    )
    assert response.status_code == 403
    assert response.json() == {"code": 993, "message": "Yon do not have authorization."}


async def test_payment_key_on_a_search_call_is_403(sim: Sim) -> None:
    response = await sim.call(
        "GET", "v1.0/payments/transaction/list", key=PAY_TEST_PAYMENT_KEY,
        params={"client_id": "pay_test", "date": "20240101", "date_type": "transaction"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == 993


async def test_another_merchants_key_for_this_client_id_is_403(sim: Sim) -> None:
    response = await sim.call(
        "POST", "v1.0/payments/request", key=AUTO_TEST_PAYMENT_KEY, json=payment_body()
    )
    assert response.status_code == 403
    assert response.json()["code"] == 993


async def test_cancelling_another_merchants_tid_is_403(sim: Sim) -> None:
    _, fields = await sim.paid()
    response = await sim.call(
        "POST", "v1.0/payments/cancel", key=AUTO_TEST_PAYMENT_KEY,
        json={"client_id": "auto_test", "user_id": "buyer01", "tid": fields["tid"],
              "ip_addr": "127.0.0.1"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == 993


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "v1.0/payments/request"),
        ("PUT", "v1.0/payments/cancel"),
        ("POST", "v1.0/payments/transaction/list"),
        ("POST", "v1.0/receipt/info/tpay_test-202401010000001"),
        ("GET", "v1.0/payments/status"),
    ],
)
async def test_wrong_http_method_on_a_known_path_is_405_code_995(
    sim: Sim, method: str, path: str
) -> None:
    response = await sim.call(method, path)
    assert response.status_code == 405
    assert response.json()["code"] == 995


async def test_body_that_is_not_a_json_object_is_406_code_2000(sim: Sim) -> None:
    for content in (b"not json", b"[1, 2]"):
        response = await sim.call(
            "POST", "v1.0/payments/request", content=content,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 406
        assert response.json()["code"] == 2000


async def test_injected_500_answers_the_flat_shape_then_stops_after_times(sim: Sim) -> None:
    await sim.faults(api_errors={"payments/request": {"times": 1}})
    first = await sim.call("POST", "v1.0/payments/request", json=payment_body())
    assert first.status_code == 500
    assert first.json() == {"code": 999, "message": "Internal server error"}
    second = await sim.call("POST", "v1.0/payments/request", json=payment_body())
    assert second.status_code == 200


async def test_injected_500_can_answer_the_nested_error_shape(sim: Sim) -> None:
    await sim.faults(api_errors={"payments/status": {"shape": "nested", "message": "boom"}})
    response = await sim.call(
        "POST", "v1.0/payments/status", json={"client_id": "pay_test", "order_no": "x"}
    )
    assert response.status_code == 500
    assert response.json() == {"error": {"code": 999, "message": "boom"}}
    # Stays until cleared (no `times`).
    again = await sim.call(
        "POST", "v1.0/payments/status", json={"client_id": "pay_test", "order_no": "x"}
    )
    assert again.status_code == 500
    await sim.client.delete("_sim/faults")
    cleared = await sim.call(
        "POST", "v1.0/payments/status", json={"client_id": "pay_test", "order_no": "x"}
    )
    assert cleared.status_code == 406


async def test_injected_error_may_be_a_business_406(sim: Sim) -> None:
    await sim.faults(
        api_errors={"payments/cancel": {"status": 406, "code": 3001, "message": "no"}}
    )
    response = await sim.call("POST", "v1.0/payments/cancel", json={})
    assert (response.status_code, response.json()) == (406, {"code": 3001, "message": "no"})


async def test_api_delay_provokes_a_client_timeout(sim: Sim) -> None:
    await sim.faults(api_delay={"payments/request": 0.3})
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(
            sim.call("POST", "v1.0/payments/request", json=payment_body()), timeout=0.05
        )
    assert time.monotonic() - started < 0.3


async def test_unknown_fault_endpoint_is_refused(sim: Sim) -> None:
    response = await sim.client.post("_sim/faults", json={"api_errors": {"nope": {}}})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "path", ["/v1.0/payments/request", "//v1.0/payments/request", "v1.0/payments/request/"]
)
async def test_path_variants_from_base_url_joining_all_route(sim: Sim, path: str) -> None:
    raw_path = path.encode() if path.startswith("/") else b"/" + path.encode()
    url = httpx.URL("http://sim.test").copy_with(raw_path=raw_path)
    response = await sim.client.post(url, json=payment_body(), headers=plkey(PAY_TEST_PAYMENT_KEY))
    assert response.status_code == 200, response.text


async def test_an_unexpected_fault_inside_the_simulator_is_500_code_999(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from simulator import reports
    from simulator.app import create_app

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(reports, "status", broken)
    app = create_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
        response = await client.post(
            "/v1.0/payments/status", json={"client_id": "pay_test", "order_no": "x"},
            headers=plkey(PAY_TEST_PAYMENT_KEY),
        )
    assert response.status_code == 500
    assert response.json() == {"code": 999, "message": "Internal server error"}
