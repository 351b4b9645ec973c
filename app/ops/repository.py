"""Queries of the audit log and the ops page's sessions; services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, select

from app.kit.sql import Repository
from app.models import AuditEntry, OpsSession


class AuditRepository(Repository):
    async def add(self, entry: AuditEntry) -> AuditEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def for_order(self, order_id: int) -> Sequence[AuditEntry]:
        stmt = select(AuditEntry).where(AuditEntry.order_id == order_id).order_by(AuditEntry.id)
        return (await self.session.scalars(stmt)).all()

    async def recent(self, *, action: str | None = None, before_id: int | None = None,
                     limit: int = 100) -> Sequence[AuditEntry]:
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        if before_id is not None:
            stmt = stmt.where(AuditEntry.id < before_id)
        return (await self.session.scalars(stmt)).all()


class OpsSessionRepository(Repository):
    """Ops page sessions on record, by the digest of their cookie."""

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
