"""The ASGI app: `app.main:app`. The lifespan builds the engine and one HTTP client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.api import demo, health, orders, payletter
from app.api.errors import install_error_handlers
from app.db import create_engine, create_sessionmaker
from app.gateway import Gateway
from app.metrics import observe_payletter_call
from app.payletter.client import PayletterClient
from app.settings import Settings, load_settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, payletter_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app. Tests pass settings and a transport that stands in for Payletter."""
    config = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(config.database_url)
        http = httpx.AsyncClient(
            transport=payletter_transport,
            timeout=httpx.Timeout(config.payletter_timeout_seconds, connect=5.0),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        client = PayletterClient(
            base_url=config.api_base_url,
            merchants=config.merchants,
            http=http,
            timeout=config.payletter_timeout_seconds,
            on_response=observe_payletter_call,
        )
        app.state.gateway = Gateway(config, engine, create_sessionmaker(engine), client)
        log.info("gateway ready: env=%s payletter=%s", config.payletter_env, config.api_base_url)
        try:
            yield
        finally:
            await http.aclose()
            await engine.dispose()

    app = FastAPI(title="Payletter gateway", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(orders.router)
    app.include_router(payletter.router)
    app.include_router(health.router)
    if config.payletter_env == "sim":
        app.include_router(demo.router)
    return app


app = create_app()
