"""A real HTTP webhook receiver on loopback, run in a thread, that counts what arrives."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.webhooks.signing import verify
from harness.postgres import free_port


@dataclass
class Receipt:
    webhook_id: str
    body: dict[str, Any]
    raw: bytes


@dataclass
class ReceiverServer:
    secret: str
    delay: float = 0.0  # seconds to hold each request (to catch a dispatcher mid-batch)
    receipts: list[Receipt] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        verify(self.secret, dict(request.headers), raw)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            self.receipts.append(Receipt(request.headers["webhook-id"], json.loads(raw), raw))
        return Response(status_code=204)

    def start(self) -> None:
        app = Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                proxy_headers=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def snapshot(self) -> list[Receipt]:
        with self._lock:
            return list(self.receipts)
