"""Queries of stored deliveries (every return, callback and cancel that arrived)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

from app.kit.sql import Repository, where_given
from app.models import Delivery

_INSERT_DELIVERY = insert(Delivery).returning(Delivery.id)  # run on a Connection: plain Core


class DeliveryRepository(Repository):
    async def insert(self, values: dict[str, Any]) -> int:
        """Store one delivery; its id. A plain INSERT, not the unit of work: every request
        to the three Payletter URLs writes one, and nothing reads it back."""
        connection = await self.session.connection()
        return int((await connection.execute(_INSERT_DELIVERY, values)).scalar_one())

    async def get(self, delivery_id: int) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def for_order(self, order_id: int) -> Sequence[Delivery]:
        stmt = select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.id)
        return (await self.session.scalars(stmt)).all()

    async def newest(self, *, kind: str | None = None, outcome: str | None = None,
                     order_no: str | None = None, unacknowledged: bool = False,
                     before_id: int | None = None, limit: int = 100) -> Sequence[Delivery]:
        """Newest first; `before_id` pages on (the smallest id of the previous page)."""
        stmt = where_given(select(Delivery).order_by(Delivery.id.desc()).limit(limit),
                            (Delivery.kind, kind), (Delivery.outcome, outcome),
                            (Delivery.order_no, order_no))
        if unacknowledged:
            stmt = stmt.where(Delivery.response_code != 0)
        if before_id is not None:
            stmt = stmt.where(Delivery.id < before_id)
        return (await self.session.scalars(stmt)).all()
