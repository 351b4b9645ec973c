"""Shared test data and a scripted fake Payletter for httpx.MockTransport."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from app.payletter.client import PayletterClient
from app.payletter.models import MerchantCredentials

# Made-up, distinctive keys: a test that finds one of them in a log or message found a leak.
PAYMENT_KEY = "PAYKEY-sentinel-7f3a9c"
SEARCH_KEY = "SEARCHKEY-sentinel-51be2d"
AUTO_PAYMENT_KEY = "AUTOPAYKEY-sentinel-a1b2"
AUTO_SEARCH_KEY = "AUTOSEARCHKEY-sentinel-c3d4"
BILLKEY = "BILLKEY-sentinel-0042"
SECRETS = (PAYMENT_KEY, SEARCH_KEY, AUTO_PAYMENT_KEY, AUTO_SEARCH_KEY, BILLKEY)
BASE_URL = "https://payletter.test/"

PAY_TEST = MerchantCredentials(
    client_id="pay_test", payment_key=SecretStr(PAYMENT_KEY), search_key=SecretStr(SEARCH_KEY)
)
AUTO_TEST = MerchantCredentials(
    client_id="auto_test",
    payment_key=SecretStr(AUTO_PAYMENT_KEY),
    search_key=SecretStr(AUTO_SEARCH_KEY),
)
MERCHANTS = {PAY_TEST.client_id: PAY_TEST, AUTO_TEST.client_id: AUTO_TEST}

# An outcome is either a response or an httpx transport error class to raise.
Outcome = httpx.Response | type[httpx.TransportError]


@dataclass
class FakePayletter:
    """Plays back outcomes in order (the last one repeats) and records every request."""

    outcomes: list[Outcome]
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes[min(len(self.requests), len(self.outcomes)) - 1]
        if isinstance(outcome, httpx.Response):
            return outcome
        raise outcome("simulated transport failure", request=request)

    @property
    def attempts(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@dataclass
class Harness:
    client: PayletterClient
    fake: FakePayletter
    sleeps: list[float]
    observed: list[tuple[str, int, float]]


MakeHarness = Callable[..., Harness]


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def payment_fields(**overrides: Any) -> dict[str, Any]:
    """A valid payments/request body (the vendor's sample, with card as the method)."""
    fields: dict[str, Any] = {
        "pgcode": "creditcard",
        "client_id": "pay_test",
        "user_id": "test_user_id",
        "user_name": "테스터",
        "service_name": "페이레터",
        "order_no": "1234567890",
        "amount": 1000,
        "taxfree_amount": 100,
        "tax_amount": 20,
        "product_name": "테스트상품",
        "email_flag": "Y",
        "email_addr": "payletter@payletter.com",
        "autopay_flag": "N",
        "receipt_flag": "Y",
        "custom_parameter": "this is custom parameter",
        "return_url": "https://shop.test/result",
        "callback_url": "https://shop.test/callback",
        "cancel_url": "https://shop.test/cancel",
    }
    fields.update(overrides)
    return fields


def autopay_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pgcode": "creditcard",
        "client_id": "auto_test",
        "service_name": "페이레터",
        "user_id": "test_user_id",
        "user_name": "테스터",
        "order_no": "1234567890",
        "amount": 1000,
        "taxfree_amount": 100,
        "tax_amount": 20,
        "product_name": "테스트상품",
        "billkey": BILLKEY,
        "ip_addr": "127.0.0.1",
    }
    fields.update(overrides)
    return fields


def cancel_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pgcode": "mobile",
        "client_id": "pay_test",
        "user_id": "test_user_id",
        "tid": "tpay_test2018010123595900001",
        "ip_addr": "127.0.0.1",
    }
    fields.update(overrides)
    return fields


def partial_cancel_fields(**overrides: Any) -> dict[str, Any]:
    fields = cancel_fields(amount=1000, taxfree_amount=100, tax_amount=20)
    fields.update(overrides)
    return fields
