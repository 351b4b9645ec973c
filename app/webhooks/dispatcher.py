"""Delivers the outbox to SHOP_WEBHOOK_URL, signed per Standard Webhooks.

Runs as a task inside the service (lifespan) and as `payletter-gateway webhooks dispatch`.
Any number of dispatchers may share one PostgreSQL database: each claims a batch under a
lease with FOR UPDATE SKIP LOCKED, so an event goes to one of them. An event whose
dispatcher dies mid-send is sent again after the lease, with the same webhook-id: shops
dedupe on it. Per order, events go out in the order they were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.metrics import WEBHOOK_DELIVERIES, WEBHOOK_OLDEST_PENDING, WEBHOOK_PENDING
from app.settings import Settings
from app.webhooks.repository import OutboxRepository
from app.webhooks.signing import headers_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchConfig:
    url: str
    secret: str
    max_attempts: int = 12
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    batch_size: int = 50
    lease_seconds: float = 60.0
    poll_seconds: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig | None:
        if not settings.shop_webhook_url or not settings.webhook_secret:
            return None
        return cls(
            url=settings.shop_webhook_url,
            secret=settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            retry_base_seconds=settings.webhook_retry_base_seconds,
            retry_cap_seconds=settings.webhook_retry_cap_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            batch_size=settings.webhook_batch_size,
            lease_seconds=settings.webhook_lease_seconds,
            poll_seconds=settings.webhook_poll_seconds,
        )


@dataclass(frozen=True)
class _Claimed:
    id: int
    event_id: str
    attempts: int
    body: bytes


@dataclass(frozen=True)
class _Result:
    event: _Claimed
    status: int | None  # HTTP status, None when no answer came
    error: str | None  # None on success


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        config: DispatchConfig,
        *,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.http = http
        self.config = config
        self._jitter = jitter
        self._stats_at = 0.0

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff with a cap and "equal jitter" (half fixed, half random)."""
        exponent = min(attempts - 1, 60)
        ceiling = min(self.config.retry_cap_seconds,
                      self.config.retry_base_seconds * 2**exponent)
        return timedelta(seconds=ceiling * (0.5 + self._jitter() / 2))

    async def run_once(self) -> int:
        """Claim one batch, send it, record the outcomes. Returns how many were sent."""
        now = utcnow()
        lease = now + timedelta(seconds=self.config.lease_seconds)
        async with self.sessionmaker() as session, session.begin():
            events = await OutboxRepository(session).claim_due(now, lease,
                                                               self.config.batch_size)
            claimed = [_Claimed(e.id, e.event_id, e.attempts, _encode(e.payload))
                       for e in events]
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._send(event) for event in claimed))
        async with self.sessionmaker() as session, session.begin():
            await self._record(OutboxRepository(session), results)
        return len(claimed)

    async def _send(self, event: _Claimed) -> _Result:
        headers = headers_for(self.config.secret, event.event_id, event.body) | {
            "content-type": "application/json",
            "user-agent": "payletter-gateway-webhooks",
        }
        try:
            response = await self.http.post(self.config.url, content=event.body,
                                             headers=headers,
                                             timeout=self.config.timeout_seconds)
        except httpx.HTTPError as exc:
            return _Result(event, None, f"{type(exc).__name__}: no answer")
        if 200 <= response.status_code < 300:
            return _Result(event, response.status_code, None)
        return _Result(event, response.status_code, f"HTTP {response.status_code}")

    async def _record(self, outbox: OutboxRepository, results: list[_Result]) -> None:
        now = utcnow()
        for result in results:
            event = result.event
            if result.error is None:
                await outbox.mark_delivered(event.id, result.status or 200, now)
                WEBHOOK_DELIVERIES.labels(outcome="delivered").inc()
                continue
            dead = event.attempts >= self.config.max_attempts
            retry_at: datetime | None = None if dead else now + self.retry_delay(event.attempts)
            await outbox.mark_failed(event.id, status=result.status, error=result.error,
                                     retry_at=retry_at)
            WEBHOOK_DELIVERIES.labels(outcome="dead" if dead else "failed").inc()
            log.warning("webhook %s attempt %d failed (%s)%s", event.event_id, event.attempts,
                        result.error, "; giving up" if dead else "")

    async def update_stats(self) -> None:
        async with self.sessionmaker() as session:
            count, oldest = await OutboxRepository(session).pending_stats()
        WEBHOOK_PENDING.set(count)
        WEBHOOK_OLDEST_PENDING.set((utcnow() - oldest).total_seconds() if oldest else 0)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; the batch in flight is finished, never abandoned."""
        log.info("webhook dispatcher started for %s", self.config.url)
        while not stop.is_set():
            sent = 0
            try:
                sent = await self.run_once()
                await self._maybe_update_stats()
            except Exception:  # the database blinked or similar: wait, then go on
                log.exception("webhook dispatch round failed")
            if sent < self.config.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.config.poll_seconds)
        log.info("webhook dispatcher stopped")

    async def _maybe_update_stats(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._stats_at >= 5:
            self._stats_at = loop_time
            await self.update_stats()


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
