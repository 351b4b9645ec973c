"""Every query of the service lives here; services call these and `flush()`, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Delivery, IdempotencyKey, Order, OrderTransition


def _insert_for(session: AsyncSession, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support for the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, order_id: int) -> Order | None:
        return await self.session.get(Order, order_id)

    async def get_by_order_no(self, order_no: str) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.order_no == order_no))

    async def lock_by_order_no(self, order_no: str) -> Order | None:
        """The order, row-locked until commit (PostgreSQL); SQLite's BEGIN IMMEDIATE
        already serialises writers."""
        stmt = (
            select(Order)
            .where(Order.order_no == order_no)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def insert_if_absent(self, values: dict[str, Any]) -> Order | None:
        """Insert a new order; None if the order_no is taken (decided by the unique index)."""
        stmt = (
            _insert_for(self.session, Order)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["order_no"])
            .returning(Order)
        )
        return (await self.session.scalars(stmt)).first()

    async def order_no_holding_tid(self, tid: str, *, other_than: int) -> str | None:
        stmt = select(Order.order_no).where(Order.tid == tid, Order.id != other_than)
        return await self.session.scalar(stmt)

    async def add_transition(
        self,
        order: Order,
        *,
        from_status: str,
        event: str,
        reason: str | None,
        delivery_id: int | None = None,
    ) -> OrderTransition:
        row = OrderTransition(
                order_id=order.id,
                from_status=from_status,
                to_status=order.status,
                event=event,
                reason=reason,
                delivery_id=delivery_id,
            )
        self.session.add(row)
        return row

    async def transitions(self, order_id: int) -> Sequence[OrderTransition]:
        stmt = (
            select(OrderTransition)
            .where(OrderTransition.order_id == order_id)
            .order_by(OrderTransition.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(select(Order.status, func.count()).group_by(Order.status))
        return {status: count for status, count in rows.tuples()}


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, delivery: Delivery) -> Delivery:
        self.session.add(delivery)
        await self.session.flush()
        return delivery

    async def for_order(self, order_id: int) -> Sequence[Delivery]:
        stmt = select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.id)
        return (await self.session.scalars(stmt)).all()


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, scope: str, key: str, request_hash: str, locked_until: datetime
    ) -> IdempotencyKey | None:
        """Take the key for this request; None if it already exists."""
        stmt = (
            _insert_for(self.session, IdempotencyKey)
            .values(scope=scope, key=key, request_hash=request_hash, created_at=utcnow(),
                    locked_until=locked_until)
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(IdempotencyKey)
        )
        return (await self.session.scalars(stmt)).first()

    async def get(self, scope: str, key: str) -> IdempotencyKey | None:
        stmt = select(IdempotencyKey).where(
            IdempotencyKey.scope == scope, IdempotencyKey.key == key
        )
        return await self.session.scalar(stmt)

    async def take_over(self, row_id: int, locked_until: datetime) -> IdempotencyKey | None:
        """Take an unfinished key whose holder's lease ran out (it failed or crashed)."""
        stmt = (
            update(IdempotencyKey)
            .where(
                IdempotencyKey.id == row_id,
                IdempotencyKey.response_status.is_(None),
                IdempotencyKey.locked_until < utcnow(),
            )
            .values(locked_until=locked_until)
            .returning(IdempotencyKey)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()
