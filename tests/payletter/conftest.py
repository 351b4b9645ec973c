"""Fixtures for the Payletter client tests: a scripted fake Payletter behind httpx.MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.payletter.client import PayletterClient

from .support import BASE_URL, MERCHANTS, FakePayletter, Harness, MakeHarness, Outcome


@pytest.fixture
async def make_harness() -> AsyncIterator[MakeHarness]:
    """Build a client wired to a FakePayletter; closes every http client afterwards."""
    http_clients: list[httpx.AsyncClient] = []

    def build(*outcomes: Outcome, **client_kwargs: Any) -> Harness:
        fake = FakePayletter(list(outcomes))
        http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
        http_clients.append(http)
        sleeps: list[float] = []
        observed: list[tuple[str, int, float]] = []

        async def record_sleep(seconds: float) -> None:
            sleeps.append(seconds)

        def record_response(endpoint: str, status: int, seconds: float) -> None:
            observed.append((endpoint, status, seconds))

        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "merchants": MERCHANTS,
            "http": http,
            "sleep": record_sleep,
            "on_response": record_response,
        }
        options.update(client_kwargs)
        return Harness(PayletterClient(**options), fake, sleeps, observed)

    yield build
    for http in http_clients:
        await http.aclose()
