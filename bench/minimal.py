"""(b) The minimal receiver: the least a callback receiver on PostgreSQL can do.

    BENCH_DSN=postgresql://… BENCH_SIMULATOR_URL=http://… \
        uvicorn bench.minimal:app --no-proxy-headers --log-level warning --no-access-log

POST /payletter/callback parses the JSON and does one `INSERT … ON CONFLICT (tid) DO
NOTHING` with raw asyncpg (autocommit), then acknowledges: no address check, no payhash, no
order, no lock, no history. POST /orders (the order-creation scenario) asks the simulator
for a payment window and stores it with one INSERT. The pool has the service's sizes
(10 connections, up to 30: app/db.py).

`bench/load.py` creates the tables (`SCHEMA`) and starts this app; it is not part of the
service.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_callbacks (
    tid text PRIMARY KEY,
    order_no text NOT NULL,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bench_orders (
    order_no text PRIMARY KEY,
    token text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""
ACK = {"code": 0, "message": ""}
# pay_test: the vendor's public test merchant (the simulator knows it).
CLIENT_ID = "pay_test"
PAYMENT_KEY = "MTFBNTAzNTEwNDAxQUIyMjlCQzgwNTg1MkU4MkZENDA="


def window_request(body: dict[str, Any], order_no: str, base: str) -> dict[str, Any]:
    """The payments/request body for a shop's order (what the service sends, minus checks)."""
    return {**body, "client_id": CLIENT_ID, "order_no": order_no,
            "return_url": f"{base}/payletter/return?order_no={order_no}",
            "callback_url": f"{base}/payletter/callback",
            "cancel_url": f"{base}/payletter/cancel?order_no={order_no}"}


def simulator_client() -> httpx.AsyncClient:
    # The same limits and timeout as the service's Payletter client (app/gateway.py).
    return httpx.AsyncClient(
        base_url=os.environ.get("BENCH_SIMULATOR_URL", "http://127.0.0.1:8001"),
        headers={"Authorization": f"PLKEY {PAYMENT_KEY}", "Accept": "application/json"},
        timeout=httpx.Timeout(10.0, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=10,
                                               max_size=30)
    app.state.http = simulator_client()
    try:
        yield
    finally:
        await app.state.http.aclose()
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.post("/payletter/callback")
async def callback(request: Request) -> JSONResponse:
    raw = await request.body()
    fields = json.loads(raw)
    await request.app.state.pool.execute(
        "INSERT INTO bench_callbacks (tid, order_no, body) VALUES ($1, $2, $3) "
        "ON CONFLICT (tid) DO NOTHING",
        str(fields["tid"]), str(fields["order_no"]), raw.decode())
    return JSONResponse(ACK)


@app.post("/orders")
async def create_order(request: Request) -> JSONResponse:
    raw = await request.body()
    order_no = uuid.uuid4().hex[:20]
    sim = await request.app.state.http.post(
        "/v1.0/payments/request",
        json=window_request(json.loads(raw), order_no, str(request.base_url).rstrip("/")))
    sim.raise_for_status()
    window = sim.json()
    await request.app.state.pool.execute(
        "INSERT INTO bench_orders (order_no, token, body) VALUES ($1, $2, $3) "
        "ON CONFLICT (order_no) DO NOTHING", order_no, str(window["token"]), raw.decode())
    return JSONResponse({"order_no": order_no, "status": "pending", **window}, status_code=201)
