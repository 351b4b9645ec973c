"""Queries of stored billkeys and of the autopay payments mobile's rules count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select

from app.db import utcnow
from app.kit.sql import Repository, insert_for, where_given
from app.models import Billkey, Order
from app.orders.states import PAID_STATES


class BillkeyRepository(Repository):
    async def remember(self, order: Order, billkey: str, *, verified: bool) -> None:
        """Store the billkey of a first autopay payment (once, whoever delivers it first);
        a verified delivery of a key already stored unverified marks it verified."""
        now = utcnow()
        insert = insert_for(self.session, Billkey).values(
            client_id=order.client_id, user_id=order.user_id,
            pgcode=order.paid_pgcode or order.pgcode, billkey=billkey,
            first_order_id=order.id, first_amount=order.amount,
            first_paid_at=order.paid_at or now, status="active", created_at=now,
            verified_at=now if verified else None)
        if verified:
            # Only the same merchant and user's row: a key someone else stored first (an
            # edited return) does not become theirs by Payletter vouching for it.
            await self.session.execute(insert.on_conflict_do_update(
                index_elements=["billkey"],
                set_={"verified_at": func.coalesce(Billkey.verified_at, now)},
                where=(Billkey.client_id == order.client_id)
                & (Billkey.user_id == order.user_id)))
        else:
            await self.session.execute(insert.on_conflict_do_nothing(index_elements=["billkey"]))

    async def get(self, billkey_id: int) -> Billkey | None:
        return await self.session.get(Billkey, billkey_id)

    async def lock(self, billkey_id: int) -> Billkey | None:
        stmt = (select(Billkey).where(Billkey.id == billkey_id).with_for_update()
                .execution_options(populate_existing=True))
        return await self.session.scalar(stmt)

    async def search(self, *, client_id: str | None = None, user_id: str | None = None,
                     status: str | None = None, after_id: int | None = None,
                     limit: int = 100) -> Sequence[Billkey]:
        stmt = where_given(select(Billkey).order_by(Billkey.id).limit(limit),
                            (Billkey.client_id, client_id), (Billkey.user_id, user_id),
                            (Billkey.status, status))
        if after_id is not None:  # oldest first: the next page is above the last id
            stmt = stmt.where(Billkey.id > after_id)
        return (await self.session.scalars(stmt)).all()

    async def count_autopay_payments(self, *, client_id: str, user_id: str, pgcode: str,
                                     start: datetime, end: datetime) -> int:
        """Autopay payments with money (first payments and charges, refunded or not) of this
        user and method whose Payletter time (else our paid_at) lies in [start, end)."""
        in_range = or_(
            (Order.transaction_date >= start) & (Order.transaction_date < end),
            Order.transaction_date.is_(None) & (Order.paid_at >= start) & (Order.paid_at < end),
        )
        stmt = select(func.count()).select_from(Order).where(
            Order.client_id == client_id, Order.user_id == user_id, Order.pgcode == pgcode,
            Order.autopay_flag == "Y", Order.amount > 0,
            Order.status.in_(PAID_STATES), in_range)
        return int(await self.session.scalar(stmt) or 0)
