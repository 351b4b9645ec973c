"""Queries of reconciliation runs (and the lock that makes one run per date)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select

from app.kit.sql import Repository
from app.models import AuditEntry, Order, ReconciliationRun, Refund

# pg_advisory_xact_lock(namespace, YYYYMMDD): one reconciliation of a date at a time.
_RECONCILE_LOCK_NAMESPACE = 0x5245_434E  # "RECN"


class ReconciliationRepository(Repository):
    """Reconciliation runs, and what a run asks about orders, refunds and its audit rows."""

    async def lock_date(self, day: str) -> None:
        """Serialise runs of one Korea date (`YYYY-MM-DD`) until this transaction ends.

        PostgreSQL: a transaction-scoped advisory lock, so replicas queue instead of
        reconciling the same day side by side. SQLite: BEGIN IMMEDIATE already admits one
        writer at a time.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            key = int(day.replace("-", ""))
            await self.session.execute(
                select(func.pg_advisory_xact_lock(_RECONCILE_LOCK_NAMESPACE, key)))

    async def add(self, run: ReconciliationRun) -> ReconciliationRun:
        self.session.add(run)
        await self.session.flush()
        return run

    async def get(self, run_id: int) -> ReconciliationRun | None:
        return await self.session.get(ReconciliationRun, run_id)

    async def runs(self, *, day: str | None = None, status: str | None = None,
                   before_id: int | None = None, limit: int = 100
                   ) -> Sequence[ReconciliationRun]:
        stmt = select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(ReconciliationRun.id < before_id)
        if day:
            stmt = stmt.where(ReconciliationRun.date == day)
        if status:
            stmt = stmt.where(ReconciliationRun.status == status)
        return (await self.session.scalars(stmt)).all()

    async def order_by_tid(self, tid: str) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.tid == tid))

    async def order_of_merchant(self, client_id: str, order_no: str) -> Order | None:
        return await self.session.scalar(
            select(Order).where(Order.client_id == client_id, Order.order_no == order_no))

    async def orders_paid_between(self, start: datetime, end: datetime,
                                  client_ids: Sequence[str], statuses: Sequence[str]
                                  ) -> Sequence[Order]:
        """Orders with a payment whose Payletter `transaction_date` (our `paid_at` when
        there is none) lies in [start, end). Amount-0 autopay sign-ups moved no money and
        are left out."""
        in_range = or_(
            (Order.transaction_date >= start) & (Order.transaction_date < end),
            Order.transaction_date.is_(None) & (Order.paid_at >= start) & (Order.paid_at < end),
        )
        stmt = (select(Order)
                .where(Order.tid.is_not(None), Order.client_id.in_(client_ids),
                       Order.status.in_(statuses), Order.amount > 0, in_range)
                .order_by(Order.id))
        return (await self.session.scalars(stmt)).all()

    async def refunds_done_between(self, start: datetime, end: datetime,
                                   client_ids: Sequence[str]) -> list[tuple[Refund, Order]]:
        """Done refunds whose Payletter cancel date lies in [start, end), with their order."""
        stmt = (select(Refund, Order)
                .join(Order, Refund.order_id == Order.id)
                .where(Refund.status == "done", Refund.cancel_date >= start,
                       Refund.cancel_date < end, Order.client_id.in_(client_ids))
                .order_by(Refund.id))
        return [(refund, order) for refund, order in (await self.session.execute(stmt)).all()]

    async def audits(self, order_no: str | None) -> Sequence[AuditEntry]:
        """The reconciliation audit rows about one order number (or about none)."""
        stmt = select(AuditEntry).where(AuditEntry.action == "reconcile").order_by(AuditEntry.id)
        stmt = stmt.where(AuditEntry.order_no == order_no if order_no is not None
                          else AuditEntry.order_no.is_(None))
        return (await self.session.scalars(stmt)).all()

    async def audits_by_id(self, ids: Sequence[int]) -> Sequence[AuditEntry]:
        if not ids:
            return []
        stmt = select(AuditEntry).where(AuditEntry.id.in_(ids)).order_by(AuditEntry.id)
        return (await self.session.scalars(stmt)).all()
