"""CORS for the shop's frontend, on POST /orders only.

Browsers on SHOP_ALLOWED_ORIGINS may post signed order intents; nothing else of the
service is reachable cross-origin, and credentials (cookies, Authorization) are never
allowed cross-origin, so an operator's ops-page session can't be used from another site.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

FRONTEND_PATHS = frozenset({"/orders"})


class FrontendCORSMiddleware:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["POST"],
            allow_headers=["content-type", "idempotency-key"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in FRONTEND_PATHS:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
