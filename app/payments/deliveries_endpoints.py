"""Operators: the returns, callbacks and cancels the service stored, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.kit.deps import MAX_ROW_ID, OpsDep, SessionDep
from app.kit.pagination import PageDep
from app.kit.responses import API_ERRORS
from app.payments.deliveries import DeliveryKind, DeliveryOutcome, delivery_summary
from app.payments.repository import DeliveryRepository

router = APIRouter(prefix="/deliveries", tags=["deliveries"], responses=API_ERRORS)


@router.get("")
async def list_deliveries(
    session: SessionDep, _: OpsDep, page: PageDep,
    kind: DeliveryKind | None = None,
    outcome: DeliveryOutcome | None = None,
    order_no: Annotated[str | None, Query(max_length=64)] = None,
    unacknowledged: Annotated[bool, Query(
        description="only those answered with a non-zero code (Payletter redelivers)")] = False,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID,
                                           description="the same as cursor (older name)")] = None,
) -> list[dict[str, Any]]:
    """Stored deliveries, newest first, without their raw bodies."""
    rows = await DeliveryRepository(session).newest(
        kind=kind, outcome=outcome, order_no=order_no, unacknowledged=unacknowledged,
        before_id=before_id or page.id_cursor, limit=page.limit)
    return [delivery_summary(d) for d in rows]
