"""Every query of the service lives here; services call these and `flush()`, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import utcnow
from app.models import (
    AuditEntry,
    Billkey,
    Delivery,
    IdempotencyKey,
    OpsSession,
    Order,
    OrderTransition,
    OutboxEvent,
    ReconciliationRun,
    Refund,
)

if TYPE_CHECKING:
    from app.services.order_queries import OrderFilter, SortKey

_KST = timezone(timedelta(hours=9))


def _insert_for(session: AsyncSession, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support for the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


T = TypeVar("T")


def _where_given(stmt: Select[T], *filters: tuple[Any, str | None]) -> Select[T]:
    """`column == value` for each (column, value) whose value is given."""
    for column, value in filters:
        if value:
            stmt = stmt.where(column == value)
    return stmt


def _id_range(stmt: Select[T], column: Any, after_id: int, up_to_id: int | None
              ) -> Select[T]:
    """Rows with `after_id` < id (<= `up_to_id`): one page of a keyset walk over ids."""
    stmt = stmt.where(column > after_id)
    return stmt if up_to_id is None else stmt.where(column <= up_to_id)


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
    .with_for_update(of=Order)
    .execution_options(populate_existing=True)
)


_INSERT_DELIVERY = insert(Delivery).returning(Delivery.id)  # run on a Connection: plain Core


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

    async def lock_for_result(self, order_no: str, tid: str) -> tuple[Order | None, str | None]:
        """The order, locked as `lock_by_order_no` does, and which other order (if any)
        already holds `tid`: one round trip on the hot path of every callback."""
        params = {"order_no": order_no, "tid": tid}
        row = (await self.session.execute(_LOCK_FOR_RESULT, params)).first()
        return (None, None) if row is None else (row[0], row[1])

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
        stmt = (select(Order).where(Order.id == order_id).with_for_update()
                .execution_options(populate_existing=True))
        return await self.session.scalar(stmt)

    async def pending_older_than(self, cutoff: datetime, *, statuses: tuple[str, ...],
                                 after_id: int = 0, up_to_id: int | None = None,
                                 limit: int = 100) -> Sequence[Order]:
        """Orders in `statuses` unchanged since `cutoff`, by id from after `after_id` (up to
        `up_to_id`): the sweeper pages through them and asks Payletter about each."""
        stmt = _id_range(select(Order).where(Order.status.in_(statuses),
                                             Order.updated_at < cutoff),
                         Order.id, after_id, up_to_id)
        return (await self.session.scalars(stmt.order_by(Order.id).limit(limit))).all()

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(select(Order.status, func.count()).group_by(Order.status))
        return {status: count for status, count in rows.all()}


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        stmt = _where_given(select(Delivery).order_by(Delivery.id.desc()).limit(limit),
                            (Delivery.kind, kind), (Delivery.outcome, outcome),
                            (Delivery.order_no, order_no))
        if unacknowledged:
            stmt = stmt.where(Delivery.response_code != 0)
        if before_id is not None:
            stmt = stmt.where(Delivery.id < before_id)
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


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
                   limit: int = 100) -> Sequence[OutboxEvent]:
        stmt = _where_given(select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(limit),
                            (OutboxEvent.status, status), (OutboxEvent.order_no, order_no))
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


class RefundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        stmt = _id_range(select(Refund).where(Refund.status == status,
                                              Refund.updated_at < cutoff),
                         Refund.id, after_id, up_to_id)
        return (await self.session.scalars(stmt.order_by(Refund.id).limit(limit))).all()


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, entry: AuditEntry) -> AuditEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def for_order(self, order_id: int) -> Sequence[AuditEntry]:
        stmt = select(AuditEntry).where(AuditEntry.order_id == order_id).order_by(AuditEntry.id)
        return (await self.session.scalars(stmt)).all()

    async def recent(self, *, action: str | None = None, limit: int = 100
                     ) -> Sequence[AuditEntry]:
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return (await self.session.scalars(stmt)).all()


class BillkeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, order: Order, billkey: str, *, verified: bool) -> None:
        """Store the billkey of a first autopay payment (once, whoever delivers it first);
        a verified delivery of a key already stored unverified marks it verified."""
        now = utcnow()
        insert = _insert_for(self.session, Billkey).values(
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

    async def for_user(self, client_id: str, user_id: str) -> Sequence[Billkey]:
        stmt = (select(Billkey).where(Billkey.client_id == client_id, Billkey.user_id == user_id)
                .order_by(Billkey.id))
        return (await self.session.scalars(stmt)).all()

    async def lock(self, billkey_id: int) -> Billkey | None:
        stmt = (select(Billkey).where(Billkey.id == billkey_id).with_for_update()
                .execution_options(populate_existing=True))
        return await self.session.scalar(stmt)

    async def search(self, *, client_id: str | None = None, user_id: str | None = None,
                     status: str | None = None, limit: int = 100) -> Sequence[Billkey]:
        stmt = _where_given(select(Billkey).order_by(Billkey.id).limit(limit),
                            (Billkey.client_id, client_id), (Billkey.user_id, user_id),
                            (Billkey.status, status))
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
            Order.status.in_(("paid", "partially_cancelled", "cancelled")), in_range)
        return int(await self.session.scalar(stmt) or 0)


# pg_advisory_xact_lock(namespace, YYYYMMDD): one reconciliation of a date at a time.
_RECONCILE_LOCK_NAMESPACE = 0x5245_434E  # "RECN"


class ReconciliationRepository:
    """Reconciliation runs, and what a run asks about orders, refunds and its audit rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
                   limit: int = 100) -> Sequence[ReconciliationRun]:
        stmt = select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(limit)
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


class OrderSearchRepository:
    """The order table as operators query it: filters, keyset pages, totals, exports."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
            day = paid_at.astimezone(_KST).date().isoformat()
            bucket = buckets.setdefault((day, pgcode), [0, 0])
            bucket[0] += 1
            bucket[1] += int(amount)
        return [(day, pgcode, c, a) for (day, pgcode), (c, a) in sorted(buckets.items())]


class OpsSessionRepository:
    """Ops page sessions on record, by the digest of their cookie."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, digest: str, *, expires_at: datetime, source_addr: str | None
                  ) -> None:
        self.session.add(OpsSession(digest=digest, expires_at=expires_at,
                                    source_addr=source_addr))
        await self.session.flush()

    async def is_active(self, digest: str, now: datetime) -> bool:
        found = await self.session.scalar(select(exists().where(
            OpsSession.digest == digest, OpsSession.expires_at > now)))
        return bool(found)

    async def end(self, digest: str) -> None:
        await self.session.execute(delete(OpsSession).where(OpsSession.digest == digest))

    async def delete_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(OpsSession).where(OpsSession.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
