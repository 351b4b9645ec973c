"""The daily reconciliation: yesterday (Korea time), once a day at RECONCILE_DAILY_AT (KST).

Runs inside the service. Several replicas may each run the schedule: the run of a date is
decided under that date's lock (`reconcile_once`), so when two fire together one
reconciles and the other finds the completed run and skips it. A run that failed
(Payletter unreachable) is retried a few times, `RETRY_AFTER` apart. A slot missed while
no replica was up is not caught up: run `payletter-gateway reconcile --date …` for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from app.db import utcnow
from app.gateway import Gateway
from app.kit.korea_time import KST, korea_date
from app.models import ReconciliationRun
from app.reconciliation.repository import ReconciliationRepository
from app.reconciliation.service import completed_by, reconcile_once

log = logging.getLogger(__name__)

ACTOR = "reconcile"  # the audit log's actor for the scheduled run
RETRY_AFTER = timedelta(minutes=15)
MAX_RETRIES = 4
_MAX_SLEEP_SECONDS = 60.0  # wake up now and then: wall-clock jumps don't delay the run


def parse_daily_at(value: str) -> time | None:
    """`HH:MM` (as normalised by the settings) → a time; "off" → None."""
    if value == "off":
        return None
    hour, _, minute = value.partition(":")
    return time(int(hour), int(minute))


def next_daily_run(now: datetime, at: time) -> datetime:
    """The first moment after `now` when Korea's wall clock shows `at` (an aware KST time)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    candidate = datetime.combine(korea_date(now), at, tzinfo=KST)
    if candidate <= now:
        candidate += timedelta(days=1)
    return candidate


def day_to_reconcile(due: datetime) -> date:
    """A slot reconciles the Korea day before it: the day is complete by then."""
    return korea_date(due) - timedelta(days=1)


async def run_scheduled(gateway: Gateway, day: date) -> ReconciliationRun | None:
    """Reconcile `day` unless a scheduled run of it already completed; None if skipped."""
    async with gateway.sessionmaker() as session, session.begin():
        # Cheap check first, so a replica that lost the race doesn't ask Payletter again.
        if await completed_by(ReconciliationRepository(session), day, ACTOR):
            return None
    async with gateway.sessionmaker() as session, session.begin():
        return await reconcile_once(session, gateway, day, actor=ACTOR)


async def run_daily(gateway: Gateway, stop: asyncio.Event, at: time,
                    now: Callable[[], datetime] = utcnow) -> None:
    """Until `stop` is set: wait for the slot, reconcile yesterday, retry if it failed."""
    due = next_daily_run(now(), at)
    day, retries = day_to_reconcile(due), 0
    log.info("daily reconciliation at %s KST; next %s", at.strftime("%H:%M"), due.isoformat())
    while not stop.is_set():
        wait = (due - now()).total_seconds()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(wait, _MAX_SLEEP_SECONDS))
            continue
        status = "error"
        try:
            run = await run_scheduled(gateway, day)
            status = "skipped" if run is None else run.status
        except Exception:  # the database may be back at the retry; keep the schedule alive
            log.exception("daily reconciliation of %s failed", day)
        if status in ("failed", "error") and retries < MAX_RETRIES:
            retries += 1
            due = now() + RETRY_AFTER
            log.warning("daily reconciliation of %s: %s; retry %d at %s", day, status, retries,
                        due.isoformat())
            continue
        log.info("daily reconciliation of %s: %s", day, status)
        due = next_daily_run(max(now(), due), at)
        day, retries = day_to_reconcile(due), 0


def start_daily(gateway: Gateway, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """The schedule's task, or None when RECONCILE_DAILY_AT is off."""
    at = parse_daily_at(gateway.settings.reconcile_daily_at)
    if at is None:
        return None
    return asyncio.create_task(run_daily(gateway, stop, at), name="daily-reconciliation")
