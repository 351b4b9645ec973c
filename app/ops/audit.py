"""The audit log: every operator action and every automatic settlement, with its evidence."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import AuditEntry, Order
from app.ops.repository import AuditRepository


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    outcome: str,
    order: Order | None = None,
    order_no: str | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add one audit row (flushed, committed with the caller's transaction)."""
    return await AuditRepository(session).add(AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        outcome=outcome,
        order_id=order.id if order is not None else None,
        order_no=order.order_no if order is not None else order_no,
        detail=detail,
    ))


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
            "action": entry.action, "outcome": entry.outcome, "order_no": entry.order_no,
            "detail": entry.detail}
