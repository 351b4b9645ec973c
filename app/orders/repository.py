"""Queries of orders, their transitions, idempotency keys and order searches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Row, bindparam, func, insert, select, tuple_, update
from sqlalchemy.orm import aliased

from app.kit.korea_time import KST
from app.kit.sql import Repository, id_range, insert_for
from app.models import Order, OrderTransition

if TYPE_CHECKING:
    from app.orders.queries import OrderFilter, SortKey


# Built once: an aliased entity and FOR UPDATE OF cost more to construct than to run.
# The subquery sees the statement's snapshot, taken before any wait for the row lock: a
# tid committed to another order during that wait is caught by the unique index on
# orders.tid instead (the transaction fails, nothing is applied; a redelivery then sees
# the holder and holds the order for review).
_OTHER_ORDER = aliased(Order)


_LOCK_FOR_RESULT = (
    select(Order, select(_OTHER_ORDER.order_no)
           .where(_OTHER_ORDER.tid == bindparam("tid"), _OTHER_ORDER.id != Order.id)
           .limit(1).scalar_subquery())
    .where(Order.order_no == bindparam("order_no"))
    .with_for_update(of=Order, key_share=True)
    .execution_options(populate_existing=True)
)


# A payment window handed out: the order's window columns and its move out of `created`,
# as plain statements (run on every order; the ORM's unit of work is not needed for it).
_WINDOW_ISSUED = (
    update(Order)
    .where(Order.id == bindparam("order_id"), Order.status == bindparam("from_status"))
    .values(token=bindparam("token"), online_url=bindparam("online_url"),
            mobile_url=bindparam("mobile_url"), last_error=None,
            status=bindparam("to_status"), updated_at=bindparam("now"))
    .returning(*Order.__table__.columns)
)
_ADD_TRANSITION = insert(OrderTransition)


class OrderRepository(Repository):
    async def get_by_id(self, order_id: int) -> Order | None:
        return await self.session.get(Order, order_id)

    async def get_by_order_no(self, order_no: str) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.order_no == order_no))

    async def lock_by_order_no(self, order_no: str) -> Order | None:
        """The order, row-locked until commit (PostgreSQL); SQLite's BEGIN IMMEDIATE
        already serialises writers.

        Every order lock is FOR NO KEY UPDATE: it excludes every other writer of the order,
        but not the foreign-key checks of rows that merely point at it (a delivery, a
        transition), so recording a redelivery never waits for an order someone holds."""
        stmt = (
            select(Order)
            .where(Order.order_no == order_no)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def insert_if_absent(self, values: dict[str, Any]) -> Order | None:
        """Insert a new order; None if the order_no is taken (decided by the unique index)."""
        stmt = (
            insert_for(self.session, Order)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["order_no"])
            .returning(Order)
        )
        return (await self.session.scalars(stmt)).first()

    async def lock_for_result(self, order_no: str, tid: str) -> tuple[Order | None, str | None]:
        """The order, locked as `lock_by_order_no` does, and which other order (if any)
        already holds `tid`: one round trip on the hot path of every callback."""
        params = {"order_no": order_no, "tid": tid}
        row = (await self.session.execute(_LOCK_FOR_RESULT, params)).first()
        return (None, None) if row is None else (row[0], row[1])

    async def issue_window(self, order_id: int, window: dict[str, str | None], *,
                           from_status: str, to_status: str, event: str, reason: str,
                           now: datetime) -> Row[Any] | None:
        """Store the window and move the order `from_status` → `to_status` with its
        transition row: two statements. None (nothing written) if the order is no longer in
        `from_status`."""
        connection = await self.session.connection()
        row = (await connection.execute(_WINDOW_ISSUED, {
            "order_id": order_id, "from_status": from_status, "to_status": to_status,
            "now": now, **window})).first()
        if row is None:
            return None
        await connection.execute(_ADD_TRANSITION, {
            "order_id": order_id, "from_status": from_status, "to_status": to_status,
            "event": event, "reason": reason, "delivery_id": None, "created_at": now})
        return row

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

    async def lock_by_id(self, order_id: int) -> Order | None:
        stmt = (select(Order).where(Order.id == order_id).with_for_update(key_share=True)
                .execution_options(populate_existing=True))
        return await self.session.scalar(stmt)

    async def pending_older_than(self, cutoff: datetime, *, statuses: tuple[str, ...],
                                 after_id: int = 0, up_to_id: int | None = None,
                                 limit: int = 100) -> Sequence[Order]:
        """Orders in `statuses` unchanged since `cutoff`, by id from after `after_id` (up to
        `up_to_id`): the sweeper pages through them and asks Payletter about each."""
        stmt = id_range(select(Order).where(Order.status.in_(statuses),
                                             Order.updated_at < cutoff),
                         Order.id, after_id, up_to_id)
        return (await self.session.scalars(stmt.order_by(Order.id).limit(limit))).all()

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(select(Order.status, func.count()).group_by(Order.status))
        return {status: count for status, count in rows.all()}


class OrderSearchRepository(Repository):
    """The order table as operators query it: filters, keyset pages, totals, exports."""

    @staticmethod
    def conditions(flt: OrderFilter) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if flt.statuses:
            where.append(Order.status.in_(flt.statuses))
        equal: tuple[tuple[Any, str | None], ...] = (
            (Order.pgcode, flt.pgcode), (Order.user_id, flt.user_id),
            (Order.order_no, flt.order_no), (Order.tid, flt.tid),
            (Order.client_id, flt.client_id))
        for column, value in equal:
            if value is not None:
                where.append(column == value)
        ranges: tuple[tuple[Any, datetime | None, datetime | None], ...] = (
            (Order.created_at, flt.created_from, flt.created_to),
            (Order.paid_at, flt.paid_from, flt.paid_to))
        for column, start, end in ranges:
            if start is not None:
                where.append(column >= start)
            if end is not None:
                where.append(column < end)
        return where

    async def page(self, flt: OrderFilter, sort: SortKey, after: tuple[Any, int] | None,
                   limit: int) -> Sequence[Order]:
        """One page in (sort column, id) order, strictly after the `after` key."""
        column = getattr(Order, sort.column)
        stmt = select(Order).where(*self.conditions(flt))
        if sort.column == "paid_at":
            stmt = stmt.where(Order.paid_at.is_not(None))
        if after is not None:
            value, last_id = after
            later = tuple_(column, Order.id) < tuple_(value, last_id) if sort.descending \
                else tuple_(column, Order.id) > tuple_(value, last_id)
            stmt = stmt.where(later)
        order_by = (column.desc(), Order.id.desc()) if sort.descending else (column, Order.id)
        return (await self.session.scalars(stmt.order_by(*order_by).limit(limit))).all()

    async def totals(self, flt: OrderFilter) -> tuple[int, int, int]:
        """(count, amount, refunded) over every order the filter matches."""
        row = (await self.session.execute(
            select(func.count(), func.coalesce(func.sum(Order.amount), 0),
                   func.coalesce(func.sum(Order.cancelled_amount), 0))
            .where(*self.conditions(flt)))).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def daily_totals(self, since: datetime) -> Sequence[tuple[str, str, int, int]]:
        """Paid orders per Korea day and method since `since`: (day, pgcode, count, amount)."""
        rows = await self.session.execute(
            select(Order.paid_at, Order.pgcode, Order.amount)
            .where(Order.paid_at >= since, Order.paid_at.is_not(None)))
        buckets: dict[tuple[str, str], list[int]] = {}
        for paid_at, pgcode, amount in rows.all():
            if paid_at is None:
                continue
            day = paid_at.astimezone(KST).date().isoformat()
            bucket = buckets.setdefault((day, pgcode), [0, 0])
            bucket[0] += 1
            bucket[1] += int(amount)
        return [(day, pgcode, c, a) for (day, pgcode), (c, a) in sorted(buckets.items())]
