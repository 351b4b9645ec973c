"""Queries of refunds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from app.kit.sql import Repository, id_range
from app.models import Refund


class RefundRepository(Repository):
    async def add(self, refund: Refund) -> Refund:
        self.session.add(refund)
        await self.session.flush()
        return refund

    async def by_idempotency_key(self, order_id: int, key: str) -> Refund | None:
        stmt = select(Refund).where(Refund.order_id == order_id, Refund.idempotency_key == key)
        return await self.session.scalar(stmt)

    async def lock(self, refund_id: int) -> Refund | None:
        stmt = (select(Refund).where(Refund.id == refund_id).with_for_update()
                .execution_options(populate_existing=True))
        return await self.session.scalar(stmt)

    async def for_order(self, order_id: int) -> Sequence[Refund]:
        stmt = select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)
        return (await self.session.scalars(stmt)).all()

    async def in_flight_for(self, order_id: int) -> Refund | None:
        stmt = select(Refund).where(Refund.order_id == order_id,
                                    Refund.status.in_(("requested", "unknown")))
        return await self.session.scalar(stmt)

    async def unknown_older_than(self, cutoff: datetime, *, status: str = "unknown",
                                 after_id: int = 0, up_to_id: int | None = None,
                                 limit: int = 100) -> Sequence[Refund]:
        """Refunds in `status` unchanged since `cutoff`, paged like `pending_older_than`."""
        stmt = id_range(select(Refund).where(Refund.status == status,
                                              Refund.updated_at < cutoff),
                         Refund.id, after_id, up_to_id)
        return (await self.session.scalars(stmt.order_by(Refund.id).limit(limit))).all()
