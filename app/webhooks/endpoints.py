"""Operators: the outbox of shop webhooks, and replaying events."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db import utcnow
from app.errors import NotFound
from app.kit.deps import OpsDep, SessionDep, answer
from app.kit.pagination import PageDep
from app.kit.responses import API_ERRORS, errors
from app.webhooks.repository import OutboxRepository
from app.webhooks.schemas import EventStatus, ReplayedOut, WebhookEventOut

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=API_ERRORS)


@router.get("/events", response_model=list[WebhookEventOut], responses=errors(400, 422))
async def list_events(
    session: SessionDep, _: OpsDep, page: PageDep, status: EventStatus | None = None,
    order_no: str | None = None,
) -> JSONResponse:
    """The newest outbox events, optionally by status or order."""
    events = await OutboxRepository(session).list(status=status, order_no=order_no,
                                                  before_id=page.id_cursor, limit=page.limit)
    return answer([
        {"event_id": e.event_id, "type": e.type, "order_no": e.order_no, "status": e.status,
         "attempts": e.attempts, "next_attempt_at": e.next_attempt_at,
         "last_status": e.last_status, "last_error": e.last_error,
         "created_at": e.created_at, "delivered_at": e.delivered_at}
        for e in events
    ])


@router.post("/events/{event_id}/replay", response_model=ReplayedOut,
             responses=errors(400, 404, 422))
async def replay_event(event_id: str, session: SessionDep, _: OpsDep) -> JSONResponse:
    """Send one event again (same webhook-id), whatever its state."""
    count = await OutboxRepository(session).replay(event_id=event_id, now=utcnow())
    if count == 0:
        raise NotFound(f"no event {event_id!r}")
    return answer({"replayed": count})


@router.post("/events/replay-dead", response_model=ReplayedOut)
async def replay_dead(session: SessionDep, _: OpsDep) -> JSONResponse:
    """Send every dead event again."""
    return answer({"replayed": await OutboxRepository(session).replay(now=utcnow())})
