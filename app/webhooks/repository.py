"""Queries of the outbox: claiming batches under a lease, marking them, listing them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import aliased

from app.kit.sql import Repository, where_given
from app.models import OutboxEvent


class OutboxRepository(Repository):
    async def claim_due(self, now: datetime, lease_until: datetime, limit: int
                        ) -> Sequence[OutboxEvent]:
        """Lease up to `limit` due events, each the oldest undelivered one of its order.

        FOR UPDATE SKIP LOCKED lets several dispatchers claim side by side on PostgreSQL
        (SQLite has one writer at a time anyway); the lease means a dispatcher that dies
        mid-send only delays its events: they are sent again, with the same webhook-id.
        """
        earlier = aliased(OutboxEvent)
        blocked = exists().where(
            earlier.order_id == OutboxEvent.order_id,
            earlier.id < OutboxEvent.id,
            earlier.status != "delivered",
        )
        due = (
            select(OutboxEvent.id)
            .where(
                OutboxEvent.status == "pending",
                OutboxEvent.next_attempt_at <= now,
                or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until < now),
                ~blocked,
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(due.scalar_subquery()))
            .values(locked_until=lease_until, attempts=OutboxEvent.attempts + 1)
            .returning(OutboxEvent)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        events = (await self.session.scalars(stmt)).all()
        return sorted(events, key=lambda e: e.id)

    async def mark_delivered(self, event_id: int, status: int, now: datetime) -> None:
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id, OutboxEvent.status == "pending")
            .values(status="delivered", delivered_at=now, locked_until=None, last_status=status,
                    last_error=None)
            .execution_options(synchronize_session=False)
        )

    async def mark_failed(self, event_id: int, *, status: int | None, error: str,
                          retry_at: datetime | None) -> None:
        """Schedule the next attempt, or (retry_at None) give up: the event is dead."""
        values: dict[str, Any] = {"locked_until": None, "last_status": status,
                                  "last_error": error[:1000]}
        values |= {"status": "dead"} if retry_at is None else {"next_attempt_at": retry_at}
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == event_id, OutboxEvent.status == "pending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def replay(self, *, event_id: str | None = None, now: datetime) -> int:
        """Send again: one event (any state), or every dead one. Returns how many."""
        stmt = update(OutboxEvent).values(
            status="pending", attempts=0, next_attempt_at=now, locked_until=None,
            delivered_at=None)
        stmt = (stmt.where(OutboxEvent.event_id == event_id) if event_id is not None
                else stmt.where(OutboxEvent.status == "dead"))
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def list(self, *, status: str | None = None, order_no: str | None = None,
                   before_id: int | None = None, limit: int = 100) -> Sequence[OutboxEvent]:
        stmt = where_given(select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(limit),
                           (OutboxEvent.status, status), (OutboxEvent.order_no, order_no))
        if before_id is not None:
            stmt = stmt.where(OutboxEvent.id < before_id)
        return (await self.session.scalars(stmt)).all()

    async def pending_stats(self) -> tuple[int, datetime | None]:
        """How many events wait, and when the oldest of them was written."""
        row = (await self.session.execute(
            select(func.count(), func.min(OutboxEvent.created_at))
            .where(OutboxEvent.status == "pending"))).one()
        oldest = row[1]
        if oldest is not None and oldest.tzinfo is None:  # aggregates skip the column type
            oldest = oldest.replace(tzinfo=UTC)
        return int(row[0]), oldest
