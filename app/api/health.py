"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.api.deps import GatewayDep
from app.api.errors import DATABASE_ERRORS
from app.metrics import ORDERS, exposition
from app.order_states import OrderStatus
from app.repositories import OrderRepository

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


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(gateway: GatewayDep) -> Response:
    """Prometheus metrics."""
    try:
        async with gateway.sessionmaker() as session:
            counts = await OrderRepository(session).count_by_status()
        for status in OrderStatus:
            ORDERS.labels(status=status.value).set(counts.get(status.value, 0))
    except DATABASE_ERRORS:
        pass  # the rest of the metrics still matter most when the database is down
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
