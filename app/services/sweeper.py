"""The background sweeper: syncs orders left pending and refunds left unknown.

Runs inside the service. Each item is settled in a transaction of its own; several
replicas may sweep at once (sync is idempotent: the state table and row locks decide).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from app.db import utcnow
from app.gateway import Gateway
from app.repositories import OrderRepository, RefundRepository
from app.services.sync import mark_unknown, settle_refund, sync_payment

log = logging.getLogger(__name__)
UNKNOWN_REFUND_GRACE = timedelta(seconds=30)


async def sweep_once(gateway: Gateway) -> int:
    """One pass; returns how many items were looked at."""
    settings, now = gateway.settings, utcnow()
    stale = now - timedelta(seconds=settings.sync_pending_after_seconds)
    # A refund still "requested" long after any Payletter call could have ended means the
    # process died mid-call: it is unknown, and settled like one (never resent).
    abandoned_after = timedelta(seconds=2 * settings.payletter_timeout_seconds + 60)
    async with gateway.sessionmaker() as session:
        orders = OrderRepository(session)
        # Separate batches, so virtual accounts waiting for their deposit can't starve
        # the pending orders (or the other way round).
        order_nos = [o.order_no for o in await orders.pending_older_than(stale)]
        order_nos += [o.order_no for o in await orders.pending_older_than(
            stale, statuses=("awaiting_deposit",))]
        refunds = RefundRepository(session)
        stuck = [r.id for r in await refunds.unknown_older_than(now - abandoned_after,
                                                                status="requested")]
        refund_ids = [r.id for r in await refunds.unknown_older_than(
            now - UNKNOWN_REFUND_GRACE)]
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
    while not stop.is_set():
        try:
            await sweep_once(gateway)
        except Exception:  # keep sweeping: the next pass may find the database back
            log.exception("sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=gateway.settings.sync_interval_seconds)
