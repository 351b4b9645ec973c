"""Liveness, readiness and metrics."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.kit.deps import GatewayDep, metrics_reader
from app.kit.http_errors import DATABASE_ERRORS
from app.kit.responses import API_ERRORS
from app.metrics import OrderCounts, exposition
from app.orders.repository import OrderRepository
from app.orders.states import OrderStatus

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database does not answer",
                                        "content": {"application/json": {}}}})
async def readyz(gateway: GatewayDep) -> JSONResponse:
    """The database answers."""
    try:
        async with gateway.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except DATABASE_ERRORS as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__},
                            status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=PlainTextResponse,
            dependencies=[Depends(metrics_reader)], responses=API_ERRORS)
async def metrics(request: Request, gateway: GatewayDep) -> Response:
    """Prometheus metrics (bearer METRICS_TOKEN when it is set)."""

    async def count() -> dict[str, int]:
        async with gateway.sessionmaker() as session:
            return await OrderRepository(session).count_by_status()

    order_counts: OrderCounts = request.app.state.order_counts
    # The rest of the metrics still matter most when the database is down.
    with contextlib.suppress(*DATABASE_ERRORS):
        await order_counts.refresh(count, (status.value for status in OrderStatus))
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
