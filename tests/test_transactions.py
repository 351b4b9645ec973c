"""The one exception to "the request commits once": commit_before_call, before a call out."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import commit_before_call, utcnow
from app.models import AuditEntry
from tests.support import scalar


async def test_what_was_flushed_is_committed_before_the_call(session: AsyncSession,
                                                             engine: AsyncEngine) -> None:
    session.add(AuditEntry(actor="ops", action="note", outcome="ok", detail={}, at=utcnow()))
    await session.flush()
    await commit_before_call(session)
    await session.rollback()  # nothing left to undo: it is committed
    assert await scalar(engine, "SELECT count(*) FROM audit_log") == 1


async def test_unflushed_changes_are_refused_not_committed_by_accident(
    session: AsyncSession, engine: AsyncEngine
) -> None:
    session.add(AuditEntry(actor="ops", action="note", outcome="ok", detail={}, at=utcnow()))
    with pytest.raises(RuntimeError, match="unflushed"):
        await commit_before_call(session)
    await session.rollback()
    assert await scalar(engine, "SELECT count(*) FROM audit_log") == 0
