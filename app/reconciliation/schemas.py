"""What the reconciliations API answers: runs, their reports, and a run that failed."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from app.kit.responses import Answer, AuditEntryOut, ErrorDetail, ErrorOut


class RunCountsOut(Answer):
    matched: int
    fixed: int
    needs_review: int


class RunSummaryOut(Answer):
    """A run, counts only (`app.reconciliation.service.run_summary`)."""

    id: int
    date: dt.date = Field(description="The Korea date reconciled")
    status: Literal["running", "completed", "failed"]
    actor: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: RunCountsOut
    error: str | None = Field(description="Why Payletter could not be asked (a failed run)")


class ListedOut(Answer):
    """How many rows Payletter listed in each view of the day."""

    transaction: int
    settle: int


class RunItemOut(Answer):
    """One line of the report: which order, what was found, and why."""

    what: str
    why: str
    order_no: str | None
    tid: str | None
    status: str | None = Field(description="Our order's state after the run; null: not ours")
    client_id: str | None
    new: bool = Field(description="First reported by this run (false: already on record)")
    audit_id: int | None = Field(description="The audit row this run wrote for it")


class RunDetailOut(RunSummaryOut):
    """A run with its report and the audit rows it wrote (`run_detail`)."""

    merchants: list[str]
    listed: ListedOut | None = Field(description="null for a failed run")
    matched: list[RunItemOut]
    fixed: list[RunItemOut]
    needs_review: list[RunItemOut]
    audit: list[AuditEntryOut]


class RunFailedDetail(ErrorDetail):
    run: RunDetailOut = Field(description="The run, stored as failed")


class RunFailedOut(ErrorOut):
    """POST /reconciliations when Payletter could not be asked (payletter_error)."""

    error: RunFailedDetail
