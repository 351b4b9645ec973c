"""The callback delivery engine, as Payletter does it.

POST the JSON to callback_url; a delivery counts only if the answer is HTTP 2xx with a
JSON body whose `code` is 0 (or "0"). Anything else (another code, non-JSON, non-2xx,
timeout, refused connection) is retried every `callback_interval` seconds, at most
`callback_max_attempts` attempts in all. Every attempt goes into the log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from simulator.clock import SimClock
from simulator.config import SimConfig
from simulator.faults import Faults
from simulator.store import CallbackAttempt, Outcome, Payment, StatusCode, Store

RESPONSE_BODY_LIMIT = 1000
USER_AGENT = "payletter-simulator/1.0"


def is_acknowledgement(response: httpx.Response) -> bool:
    if not response.is_success:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    code = body.get("code")
    # `False == 0` in Python: only a real int 0 or the string "0" counts.
    return (type(code) is int and code == 0) or code == "0"


@dataclass
class Delivery:
    """One copy of one callback, with its own retry schedule."""

    id: int
    token: int
    order_no: str
    tid: str
    url: str
    payload: dict[str, Any]
    delay: float
    interval: float
    max_attempts: int
    first_attempt_done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class CallbackEngine:
    def __init__(
        self,
        *,
        config: SimConfig,
        store: Store,
        clock: SimClock,
        faults: Callable[[], Faults],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._faults = faults
        # Tests may inject a transport (e.g. an ASGI receiver); then no real sockets are used.
        self._transport = transport
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivery_ids = itertools.count(1)

    # Scheduling.
    def deliver(
        self, payment: Payment, payload: dict[str, Any], *, copies: int | None = None,
        ignore_drops: bool = False, delay: float | None = None,
    ) -> list[Delivery]:
        """Start `copies` concurrent deliveries (default: the duplicate_callbacks fault),
        each after `delay` seconds (default: the callback_delay fault)."""
        faults = self._faults()
        count = copies if copies is not None else faults.duplicate_callbacks
        deliveries = []
        for _ in range(count):
            delivery = Delivery(
                id=next(self._delivery_ids),
                token=payment.token,
                order_no=payment.order_no,
                tid=payment.tid,
                url=payment.callback_url,
                payload=payload,
                delay=faults.callback_delay if delay is None else delay,
                interval=self._config.callback_interval,
                max_attempts=self._config.callback_max_attempts,
            )
            if not ignore_drops and faults.drops(payment.order_no):
                self._log(delivery, 1, self._source_address(), "dropped", started=time.monotonic())
                delivery.first_attempt_done.set()
            else:
                delivery.task = asyncio.get_running_loop().create_task(self._run(delivery))
                self._tasks.add(delivery.task)
                delivery.task.add_done_callback(self._tasks.discard)
            deliveries.append(delivery)
        return deliveries

    @staticmethod
    async def wait_first_attempts(deliveries: list[Delivery]) -> None:
        await asyncio.gather(*(d.first_attempt_done.wait() for d in deliveries))

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self.cancel_all()
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

    # Delivering.
    async def _run(self, delivery: Delivery) -> None:
        try:
            if delivery.delay:
                await asyncio.sleep(delivery.delay)
            for attempt in range(1, delivery.max_attempts + 1):
                entry = await self._attempt(delivery, attempt)
                delivery.first_attempt_done.set()
                if entry.outcome == "acknowledged":
                    self._mark_done(delivery.token)
                    return
                if attempt < delivery.max_attempts:
                    await asyncio.sleep(delivery.interval)
        finally:
            delivery.first_attempt_done.set()  # never leave a waiter hanging

    async def _attempt(self, delivery: Delivery, attempt: int) -> CallbackAttempt:
        source = self._source_address()
        started = time.monotonic()
        sent_at = self._clock.now()
        try:
            response = await self._client(source).post(
                delivery.url, content=json.dumps(delivery.payload, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.TimeoutException as exc:
            return self._log(delivery, attempt, source, "timeout", started, sent_at, error=exc)
        except Exception as exc:  # refused, DNS, bad local address...: all "not delivered"
            return self._log(delivery, attempt, source, "error", started, sent_at, error=exc)
        outcome: Outcome = "acknowledged" if is_acknowledgement(response) else "rejected"
        return self._log(
            delivery, attempt, source, outcome, started, sent_at,
            status=response.status_code, body=response.text[:RESPONSE_BODY_LIMIT],
        )

    def _source_address(self) -> str | None:
        override = self._faults().callback_source_address
        return override if override is not None else self._config.callback_source_address

    def _client(self, source: str | None) -> httpx.AsyncClient:
        key = None if self._transport is not None else source
        client = self._clients.get(key)
        if client is None:
            # No cap on connections: Payletter's deliveries don't queue behind each other,
            # and a request left waiting for a pooled connection can, when its pool timeout
            # fires just as it is handed a new one, leak that slot for good (httpcore 1.0.9,
            # encode/httpcore#1093): after a burst, every later delivery "timed out" unsent.
            transport = self._transport or httpx.AsyncHTTPTransport(
                local_address=source,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=20))
            client = httpx.AsyncClient(
                transport=transport,
                timeout=self._config.callback_timeout,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
            self._clients[key] = client
        return client

    def _log(
        self, delivery: Delivery, attempt: int, source: str | None, outcome: Outcome,
        started: float, sent_at: datetime | None = None, *, status: int | None = None,
        body: str | None = None, error: BaseException | None = None,
    ) -> CallbackAttempt:
        entry = CallbackAttempt(
            id=self._store.new_log_id(),
            delivery_id=delivery.id,
            token=delivery.token,
            order_no=delivery.order_no,
            tid=delivery.tid,
            attempt=attempt,
            url=delivery.url,
            sent_at=sent_at or self._clock.now(),
            source_address=source,
            outcome=outcome,
            response_status=status,
            response_body=body,
            error=f"{type(error).__name__}: {error}" if error is not None else None,
            elapsed_ms=int((time.monotonic() - started) * 1000),
        )
        self._store.callback_log.append(entry)
        return entry

    def _mark_done(self, token: int) -> None:
        payment = self._store.payments.get(token)
        if payment is not None and payment.status_code == StatusCode.APPROVED:
            payment.status_code = StatusCode.DONE
