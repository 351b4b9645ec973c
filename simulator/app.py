"""The simulator's ASGI app: `create_app(config)`."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from simulator import api, control, window
from simulator.config import SimConfig
from simulator.errors import PayletterError, internal_error, method_not_allowed
from simulator.state import Simulator

log = logging.getLogger("simulator")

_REPEATED_SLASHES = re.compile(r"/{2,}")
_REPEATED_SLASHES_RAW = re.compile(rb"/{2,}")


class NormalizePath:
    """'//v1.0/payments/request' and '/v1.0/receipt/info/{tid}/' (the vendor's own sample
    has that trailing slash) route like the plain path, whatever base URL a client joined."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            normal = _REPEATED_SLASHES.sub("/", path)
            if len(normal) > 1:
                normal = normal.rstrip("/") or "/"
            if normal != path:
                scope = dict(scope)
                scope["path"] = normal
                raw: bytes = scope.get("raw_path") or path.encode()
                raw = _REPEATED_SLASHES_RAW.sub(b"/", raw)
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


async def _payletter_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PayletterError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        error = method_not_allowed()
        return JSONResponse(error.body(), status_code=405, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("simulator fault on %s %s", request.method, request.url.path)
    error = internal_error()
    return JSONResponse(error.body(), status_code=error.status)


def create_app(
    config: SimConfig | None = None,
    *,
    callback_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build a simulator. `callback_transport` lets tests deliver callbacks to an in-process
    receiver (no sockets); by default callbacks go over the network from
    `config.callback_source_address`."""
    simulator = Simulator.build(config or SimConfig(), callback_transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Pending redeliveries die with the process; cancel them cleanly.
            await simulator.callbacks.aclose()

    app = FastAPI(
        title="Payletter simulator",
        lifespan=lifespan,
        docs_url="/_sim/docs",
        openapi_url="/_sim/openapi.json",
        redoc_url=None,
    )
    app.state.sim = simulator
    app.add_exception_handler(PayletterError, _payletter_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(api.router)
    app.include_router(window.router)
    app.include_router(control.router)
    app.add_middleware(NormalizePath)
    return app
