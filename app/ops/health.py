"""Liveness, readiness and metrics."""

from __future__ import annotations

import contextlib
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import Field
from sqlalchemy import text

from app.kit.deps import GatewayDep, answer, metrics_reader
from app.kit.http_errors import DATABASE_ERRORS
from app.kit.responses import SERVED_ERRORS, Answer, errors, not_json
from app.metrics import OrderCounts, exposition
from app.orders.repository import OrderRepository
from app.orders.states import OrderStatus

router = APIRouter(tags=["health"], responses=SERVED_ERRORS)


class HealthOut(Answer):
    status: Literal["ok"]


class ReadyOut(Answer):
    status: Literal["ok"]
    database: Literal["ok"]


class NotReadyOut(Answer):
    status: Literal["unavailable"]
    database: str = Field(description="What the database's failure was (an exception's name)")


@router.get("/healthz", response_model=HealthOut)
async def healthz() -> JSONResponse:
    """The process is up."""
    return answer({"status": "ok"})


@router.get("/readyz", response_model=ReadyOut, responses={
    503: {"model": NotReadyOut, "description": "The database does not answer"}})
async def readyz(gateway: GatewayDep) -> JSONResponse:
    """The database answers."""
    try:
        async with gateway.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except DATABASE_ERRORS as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__},
                            status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=Response, dependencies=[Depends(metrics_reader)],
            responses={**not_json("text/plain", "Prometheus' text format"),
                       **errors(401, 403, described={
                           401: "No bearer token (METRICS_TOKEN is set)",
                           403: "Not METRICS_TOKEN"})})
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
