"""What the service's own middleware costs per request, in-process (no sockets, no database).

    python -m bench.middleware [--requests N]

The same `GET /healthz` is sent straight into the ASGI app, N times each, interleaved in
rounds: through the whole app (Starlette's error middleware, the request id and access
line, CORS when configured, the body limit, then the router) and through the app with our
middleware left out (Starlette's own kept). The difference is what ours costs; it is
printed as µs per request with the bare path as the baseline of the same run. The access
line is measured both as written (LOG_LEVEL=INFO, into a null handler) and skipped
(WARNING, as in `make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from typing import Any

from starlette.types import ASGIApp, Message

from app.main import create_app
from app.settings import Settings

SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/healthz", "raw_path": b"/healthz", "root_path": "",
    "query_string": b"", "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
}


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


async def per_request_us(app: ASGIApp, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await app(dict(SCOPE), _receive, _send)
    return (time.perf_counter() - started) / n * 1e6


def build(with_ours: bool) -> ASGIApp:
    settings = Settings(_env_file=None, database_url="sqlite+aiosqlite:///:memory:",  # type: ignore[call-arg]
                        payletter_env="sim", api_docs=False)
    app = create_app(settings)
    if not with_ours:  # Starlette's own error middleware stays; ours go
        app.user_middleware = []
    app.middleware_stack = app.build_middleware_stack()
    return app


async def main(n: int, rounds: int) -> None:
    whole, bare = build(True), build(False)
    access = logging.getLogger("app.access")
    access.propagate = False
    access.addHandler(logging.NullHandler())
    results: dict[str, list[float]] = {"bare": [], "ours, access line skipped": [],
                                       "ours, access line written": []}
    for _ in range(rounds):
        results["bare"].append(await per_request_us(bare, n))
        access.setLevel(logging.WARNING)
        results["ours, access line skipped"].append(await per_request_us(whole, n))
        access.setLevel(logging.INFO)
        results["ours, access line written"].append(await per_request_us(whole, n))
    base = statistics.median(results["bare"])
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:28s} {median:7.1f} µs/request  (+{median - base:5.1f} µs over bare)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
