"""The ASGI app: `app.main:app`. The lifespan builds the engine and one HTTP client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.billing import endpoints as billing
from app.db import create_engine, create_sessionmaker
from app.gateway import Gateway, payletter_client, payletter_http
from app.kit.body_limit import BodyLimitMiddleware
from app.kit.http_errors import install_error_handlers
from app.metrics import OrderCounts, observe_payletter_call
from app.observability import RequestIdMiddleware, configure_logging
from app.ops import endpoints as ops_page
from app.ops import health
from app.orders import endpoints as orders
from app.orders.cors import FrontendCORSMiddleware
from app.payments import deliveries_endpoints as deliveries
from app.payments import endpoints as payletter
from app.payments.sweeper import run_sweeper
from app.reconciliation import endpoints as reconciliations
from app.reconciliation.schedule import start_daily
from app.refunds import endpoints as refunds
from app.settings import Settings, load_settings
from app.webhooks import endpoints as webhooks
from app.webhooks.dispatcher import DispatchConfig, Dispatcher
from demo import shop as demo

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    payletter_transport: httpx.AsyncBaseTransport | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app. Tests pass settings and transports standing in for Payletter/the shop."""
    config = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(config.log_format, config.log_level)
        engine = create_engine(config.database_url, **config.pool_options)
        http = payletter_http(config, payletter_transport)
        client = payletter_client(config, http, on_response=observe_payletter_call)
        sessionmaker = create_sessionmaker(engine)
        app.state.gateway = Gateway(config, engine, sessionmaker, client)
        dispatch = DispatchConfig.from_settings(config)
        stop, dispatcher_task = asyncio.Event(), None
        hooks_http = httpx.AsyncClient(transport=webhook_transport)
        if dispatch is not None and config.webhook_dispatcher:
            dispatcher = Dispatcher(sessionmaker, hooks_http, dispatch)
            dispatcher_task = asyncio.create_task(dispatcher.run_forever(stop))
        sweeper_task = (asyncio.create_task(run_sweeper(app.state.gateway, stop))
                        if config.sync_sweeper else None)
        reconcile_task = start_daily(app.state.gateway, stop)  # RECONCILE_DAILY_AT
        log.info("gateway ready: env=%s payletter=%s", config.payletter_env, config.api_base_url)
        try:
            yield
        finally:
            stop.set()  # the batch in flight finishes; nothing is cut off mid-send
            if dispatcher_task is not None:
                await dispatcher_task
            if sweeper_task is not None:
                await sweeper_task
            if reconcile_task is not None:
                await reconcile_task  # a run in progress finishes (its transaction commits)
            await hooks_http.aclose()
            await http.aclose()
            await engine.dispose()

    # The API's description is a map for whoever finds the service: outside sim, on request.
    docs = config.api_docs if config.api_docs is not None else config.payletter_env == "sim"
    app = FastAPI(title="Payletter gateway", version="0.1.0", lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.order_counts = OrderCounts()  # this process's cache of gateway_orders
    # Innermost of ours: a refused body still gets CORS headers, a request id and a log line.
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)
    if config.allowed_origins:
        app.add_middleware(FrontendCORSMiddleware, origins=config.allowed_origins)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    # Payletter's URLs first: routes are matched in order, and the callback is the hot path.
    app.include_router(payletter.router)
    app.include_router(orders.router)
    app.include_router(refunds.router)
    app.include_router(billing.router)
    app.include_router(webhooks.router)
    app.include_router(deliveries.router)
    app.include_router(reconciliations.router)
    app.include_router(health.router)
    app.include_router(ops_page.router)
    if config.payletter_env == "sim":
        app.include_router(demo.router)
    return app


app = create_app()
