"""(c) The bare endpoint: FastAPI and uvicorn alone, no database.

    BENCH_SIMULATOR_URL=http://… uvicorn bench.bare:app --no-proxy-headers \
        --log-level warning --no-access-log

POST /payletter/callback reads the body and returns Payletter's acknowledgement; nothing is
parsed or stored. POST /orders (the order-creation scenario) passes the request on to the
simulator's payments/request and returns the window: the simulator's time plus HTTP, no
database. The floor the framework and the loopback put under every answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.minimal import ACK, simulator_client, window_request


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.http = simulator_client()
    try:
        yield
    finally:
        await app.state.http.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/payletter/callback")
async def callback(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(ACK)


@app.post("/orders")
async def create_order(request: Request) -> JSONResponse:
    order_no = uuid.uuid4().hex[:20]
    sim = await request.app.state.http.post(
        "/v1.0/payments/request",
        json=window_request(json.loads(await request.body()), order_no,
                            str(request.base_url).rstrip("/")))
    sim.raise_for_status()
    return JSONResponse({"order_no": order_no, "status": "pending", **sim.json()},
                        status_code=201)
