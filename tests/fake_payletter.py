"""An in-process stand-in for Payletter's API, for tests that don't need the simulator.

It answers payments/request and payments/status from a small table the test controls, and
records every call. The end-to-end tests use the real simulator (simulator/) instead.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class FakePayletter:
    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    # path -> (status, body) to answer instead of the happy path; or an exception to raise
    failures: dict[str, Any] = field(default_factory=dict)
    # order_no -> payments/status answer
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def confirms(self, result: dict[str, str], status_code: int = 4) -> dict[str, str]:
        """Make payments/status confirm `result` (its order_no and tid); returns it."""
        self.statuses[result["order_no"]] = {"token": "1", "tid": result["tid"],
                                             "status_code": status_code}
        return result

    def calls_to(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body, _ in self.calls if p == path]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.lstrip("/")
        body = json.loads(request.content) if request.content else dict(request.url.params)
        self.calls.append((path, body, dict(request.headers)))
        failure = self.failures.get(path)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            status, payload = failure
            return httpx.Response(status, json=payload)
        if path == "v1.0/payments/request":
            token = 170000000000000000 + next(self._tokens)
            return httpx.Response(200, json={
                "token": token,
                "online_url": f"http://payletter.localhost/pay/{token}?location=online",
                "mobile_url": f"http://payletter.localhost/pay/{token}?location=mobile",
            })
        if path == "v1.0/payments/status":
            answer = self.statuses.get(body.get("order_no", ""))
            if answer is None:
                return httpx.Response(406, json={"code": 2101, "message": "no such order"})
            return httpx.Response(200, json={"code": 0, "message": "ok",
                                             "client_id": body.get("client_id"),
                                             "order_no": body.get("order_no"), **answer})
        return httpx.Response(405, json={"code": 995, "message": "not faked"})
