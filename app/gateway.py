"""What a request needs from the running service, built once in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker
from app.kit.throttle import FailureThrottle
from app.payletter.client import PayletterClient, ResponseHook
from app.payletter.models import MerchantCredentials
from app.settings import Settings


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    payletter: PayletterClient
    # Failed sign-ins and wrong tokens per source: this process's count (app/kit/throttle.py).
    auth_failures: FailureThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.auth_failures = FailureThrottle(self.settings.auth_failure_limit,
                                             self.settings.auth_failure_window_seconds)

    def merchant(self, client_id: str) -> MerchantCredentials | None:
        return self.settings.merchants.get(client_id)

    def payment_key(self, client_id: str) -> str | None:
        merchant = self.merchant(client_id)
        return merchant.payment_key.get_secret_value() if merchant else None


def payletter_http(settings: Settings,
                   transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one HTTP client for Payletter (tests pass a transport standing in for it)."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.payletter_timeout_seconds, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


def payletter_client(settings: Settings, http: httpx.AsyncClient, *,
                     on_response: ResponseHook | None = None) -> PayletterClient:
    return PayletterClient(base_url=settings.api_base_url, merchants=settings.merchants,
                           http=http, timeout=settings.payletter_timeout_seconds,
                           on_response=on_response)


@asynccontextmanager
async def open_gateway(settings: Settings, *,
                       payletter_transport: httpx.AsyncBaseTransport | None = None,
                       on_response: ResponseHook | None = None) -> AsyncIterator[Gateway]:
    """A Gateway outside the service (the CLI): engine and HTTP client closed on exit."""
    engine = create_engine(settings.database_url, **settings.pool_options)
    try:
        async with payletter_http(settings, payletter_transport) as http:
            yield Gateway(settings, engine, create_sessionmaker(engine),
                          payletter_client(settings, http, on_response=on_response))
    finally:
        await engine.dispose()
