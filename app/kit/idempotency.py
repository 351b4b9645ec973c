"""Idempotency-Key: a request's outcome, answered again to every retry of the same request.

A key is claimed (`INSERT … ON CONFLICT DO NOTHING`) under a lease long enough for one
Payletter call; the outcome is kept on it when final, and the key is freed at once when the
same request may simply run again. A holder that crashed loses the key when its lease ends.
Services return `Done` or `Failed`; the routes turn them into answers (`app.kit.deps`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import AppError, Conflict, InvalidRequest
from app.gateway import Gateway
from app.kit.sql import Repository, insert_for
from app.models import IdempotencyKey

# How a kept outcome is stored (the key table stores the answer as it was given).
DONE_STATUS = 201


@dataclass(frozen=True)
class Done:
    """The request made what it asked for; `view` is that resource as the API shows it."""

    view: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class Failed:
    """The request was refused or failed, and that is on record: `error` is the answer.
    `retryable`: the same request may run again at once (the key is freed, not kept)."""

    error: AppError
    retryable: bool = False
    replayed: bool = False


Result = Done | Failed


class KeptError(AppError):
    """An earlier answer to the same request, given again as it was."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        error = body.get("error") or {}
        super().__init__(str(error.get("message", "")))
        self.status_code, self.body = status_code, body

    def to_body(self) -> dict[str, Any]:
        return self.body


@dataclass
class Claim:
    """What claiming a key gave: the key to finish, or the outcome to answer again."""

    key: IdempotencyKey | None
    replay: Result | None = None


def fingerprint(body: BaseModel) -> str:
    """What a key is bound to: the request's fields as canonical JSON, hashed."""
    canonical = json.dumps(body.model_dump(exclude_none=True), sort_keys=True,
                           ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(session: AsyncSession, gateway: Gateway, scope: str, key: str | None,
                body: BaseModel) -> Claim:
    """Own the key (within `scope`) for this request, or say what to answer instead. A
    request without a key has nothing to claim (`Claim(None)`)."""
    if not key:
        return Claim(None)
    request_hash = fingerprint(body)
    keys = IdempotencyRepository(session)
    # Long enough to cover one Payletter call; a holder that crashed frees it after this.
    lease = timedelta(seconds=2 * gateway.settings.payletter_timeout_seconds + 5)
    claimed = await keys.claim(scope, key, request_hash, utcnow() + lease)
    if claimed is not None:
        return Claim(claimed)
    existing = await keys.get(scope, key)
    if existing is None:  # deleted under us; vanishingly rare
        raise Conflict("a request with this Idempotency-Key just changed; retry it")
    if existing.request_hash != request_hash:
        raise InvalidRequest("Idempotency-Key was already used with a different request body",
                             field="Idempotency-Key")
    if existing.response_status is not None and existing.response_body is not None:
        return Claim(None, _kept(existing.response_status, existing.response_body))
    taken = await keys.take_over(existing.id, utcnow() + lease)
    if taken is None:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry later")
    return Claim(taken)


def finish(key: IdempotencyKey | None, result: Result) -> None:
    """Keep a final outcome on the key; free it at once for a retryable one."""
    if key is None:
        return
    if isinstance(result, Failed) and result.retryable:
        key.locked_until = utcnow()  # the same request may come again at once
        return
    if isinstance(result, Done):
        key.response_status, key.response_body = DONE_STATUS, result.view
    else:
        key.response_status, key.response_body = result.error.status_code, result.error.to_body()
    key.completed_at = utcnow()


def _kept(status: int, body: dict[str, Any]) -> Result:
    if status == DONE_STATUS:
        return Done(body, replayed=True)
    return Failed(KeptError(status, body), replayed=True)


class IdempotencyRepository(Repository):
    async def claim(
        self, scope: str, key: str, request_hash: str, locked_until: datetime
    ) -> IdempotencyKey | None:
        """Take the key for this request; None if it already exists."""
        stmt = (
            insert_for(self.session, IdempotencyKey)
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
