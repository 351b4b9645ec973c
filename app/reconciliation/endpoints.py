"""Operators: reconcile a Korea date against Payletter's transaction list, read past runs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from app.errors import NotFound, UpstreamError
from app.kit.deps import GatewayDep, OpsDep, RowId, SessionDep, answer
from app.kit.korea_time import check_day
from app.kit.pagination import PageDep
from app.kit.responses import API_ERRORS, errors
from app.reconciliation.repository import ReconciliationRepository
from app.reconciliation.schemas import RunDetailOut, RunFailedOut, RunSummaryOut
from app.reconciliation.service import reconcile, run_detail, run_summary, yesterday_in_korea

router = APIRouter(prefix="/reconciliations", tags=["reconciliations"], responses=API_ERRORS)


def _iso_day(value: object) -> object:
    # Pydantic alone reads 0, 0.0 or "86400" as a Unix time (1970-01-02): refuse, don't guess.
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-":
        return value
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


IsoDay = Annotated[dt.date, BeforeValidator(_iso_day), AfterValidator(check_day)]


class ReconcileBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: IsoDay | None = Field(
        default=None, description="Korea date, YYYY-MM-DD (default: yesterday in Korea)")


@router.post("", status_code=201, response_model=RunDetailOut, responses={
    **errors(400, 422), **errors(502, model=RunFailedOut, described={
        502: "Payletter's transaction list could not be read: the run is stored as failed"})})
async def post_reconciliation(
    session: SessionDep, gateway: GatewayDep, role: OpsDep,
    body: Annotated[ReconcileBody | None, Body()] = None,
) -> JSONResponse:
    """Run a reconciliation now: 201 with its report; 502 (run stored as failed) if
    Payletter could not be asked."""
    day = body.date if body is not None and body.date is not None else yesterday_in_korea()
    run = await reconcile(session, gateway, day, actor=role)
    detail = await run_detail(session, run)
    if run.status == "failed":
        error = UpstreamError(f"Payletter's transaction list could not be read: "
                              f"{detail['error']}", run=detail)
        return JSONResponse(error.to_body(), status_code=error.status_code)
    return JSONResponse(detail, status_code=201)


@router.get("", response_model=list[RunSummaryOut], responses=errors(422))
async def list_reconciliations(
    session: SessionDep, _: OpsDep, page: PageDep,
    date: Annotated[IsoDay | None, Query(description="Korea date, YYYY-MM-DD")] = None,
) -> JSONResponse:
    """Past runs, newest first (counts only; the items are in GET /reconciliations/{id})."""
    runs = await ReconciliationRepository(session).runs(
        day=date.isoformat() if date else None, before_id=page.id_cursor, limit=page.limit)
    return answer([run_summary(run) for run in runs])


@router.get("/{run_id}", response_model=RunDetailOut, responses=errors(404, 422))
async def get_reconciliation(run_id: RowId, session: SessionDep, _: OpsDep) -> JSONResponse:
    """One run: what matched, what was fixed, what needs a human, and its audit rows."""
    run = await ReconciliationRepository(session).get(run_id)
    if run is None:
        raise NotFound(f"no reconciliation {run_id}")
    return answer(await run_detail(session, run))
