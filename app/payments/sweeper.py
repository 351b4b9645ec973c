"""The background sweeper: syncs orders left pending and refunds left unknown.

Runs inside the service. Each item is settled in a transaction of its own; several
replicas may sweep at once (sync is idempotent: the state table and row locks decide).

A sync may leave an item as it was: a virtual account still waiting for its deposit, an
order or refund Payletter can't be asked about right now. Read oldest first, those would
come back at the head of every pass and starve everything behind them. So each kind of
item is walked by id instead, a batch a pass from where the last pass stopped, wrapping
around at the end: with n stale items, each is looked at once every ceil(n / BATCH)
passes. The position is this process's own; other replicas walk on their own, and a
second look at an item changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from app.db import utcnow
from app.gateway import Gateway
from app.models import Order, Refund
from app.orders.repository import OrderRepository
from app.payments.sync import mark_unknown, settle_refund, sync_payment
from app.refunds.repository import RefundRepository

log = logging.getLogger(__name__)
UNKNOWN_REFUND_GRACE = timedelta(seconds=30)
BATCH = 100  # items of each kind per pass


Row = TypeVar("Row", Order, Refund)
# (after_id, up_to_id, limit) -> rows by id
Fetch = Callable[[int, int | None, int], Awaitable[Sequence[Row]]]


@dataclass
class Cursor:
    """A keyset cursor over ids that wraps around: the last id a pass looked at."""

    after: int = 0

    async def next_batch(self, fetch: Fetch[Row], limit: int = BATCH) -> list[Row]:
        rows = list(await fetch(self.after, None, limit))
        if len(rows) == limit:
            self.after = rows[-1].id
            return rows
        if not self.after:  # everything there is fit in this batch
            return rows
        # The end was reached: go on from the lowest id, up to where this pass began.
        room = limit - len(rows)
        wrapped = list(await fetch(0, self.after, room))
        self.after = wrapped[-1].id if len(wrapped) == room else 0
        return rows + wrapped


@dataclass
class SweepCursors:
    """Where the passes of one sweeper are, per kind of item."""

    pending: Cursor = field(default_factory=Cursor)
    awaiting_deposit: Cursor = field(default_factory=Cursor)
    unknown_refunds: Cursor = field(default_factory=Cursor)


async def sweep_once(gateway: Gateway, cursors: SweepCursors | None = None) -> int:
    """One pass; returns how many items were looked at. Without `cursors`, a pass of a
    fresh sweeper (the lowest ids first)."""
    cursors = cursors or SweepCursors()
    settings, now = gateway.settings, utcnow()
    stale = now - timedelta(seconds=settings.sync_pending_after_seconds)
    # A refund still "requested" long after any Payletter call could have ended means the
    # process died mid-call: it is unknown, and settled like one (never resent).
    abandoned_after = timedelta(seconds=2 * settings.payletter_timeout_seconds + 60)
    async with gateway.sessionmaker() as session:
        orders, refunds = OrderRepository(session), RefundRepository(session)

        def stale_orders(*statuses: str) -> Fetch[Order]:
            return lambda after, up_to, limit: orders.pending_older_than(
                stale, statuses=statuses, after_id=after, up_to_id=up_to, limit=limit)

        # Separate batches, so virtual accounts waiting for their deposit can't crowd out
        # the pending orders (or the other way round).
        order_nos = [o.order_no for o in await cursors.pending.next_batch(
            stale_orders("created", "pending"))]
        order_nos += [o.order_no for o in await cursors.awaiting_deposit.next_batch(
            stale_orders("awaiting_deposit"))]
        # Marking them unknown moves them all on: the first batch is always new.
        stuck = [r.id for r in await refunds.unknown_older_than(
            now - abandoned_after, status="requested", limit=BATCH)]
        refund_ids = [r.id for r in await cursors.unknown_refunds.next_batch(
            lambda after, up_to, limit: refunds.unknown_older_than(
                now - UNKNOWN_REFUND_GRACE, after_id=after, up_to_id=up_to, limit=limit))]
    for refund_id in stuck:
        async with gateway.sessionmaker() as session:
            await mark_unknown(session, refund_id, actor="sweeper")
            await session.commit()
    # Plain sessions, committed at the end: the sync ends its own read transaction before
    # asking Payletter (no lock across HTTP), which a `session.begin()` block would forbid.
    for refund_id in [*stuck, *refund_ids]:
        async with gateway.sessionmaker() as session:
            await settle_refund(session, gateway, refund_id, actor="sweeper", now=utcnow())
            await session.commit()
    for order_no in order_nos:
        async with gateway.sessionmaker() as session:
            await sync_payment(session, gateway, order_no, actor="sweeper", now=utcnow())
            await session.commit()
    return len(order_nos) + len(refund_ids) + len(stuck)


async def run_sweeper(gateway: Gateway, stop: asyncio.Event) -> None:
    cursors = SweepCursors()  # this process's place in each walk, kept across passes
    while not stop.is_set():
        try:
            await sweep_once(gateway, cursors)
        except Exception:  # keep sweeping: the next pass may find the database back
            log.exception("sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=gateway.settings.sync_interval_seconds)
