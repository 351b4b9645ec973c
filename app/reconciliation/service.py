"""Reconciliation: Payletter's transaction list for one Korea date against our table.

Payletter is asked for two views of the day, for every configured merchant:

- `date_type=transaction`: each payment made that day, in its *current* state
  (status_code 0 approved, 1 fully cancelled, 2 partially cancelled; on a cancelled row
  `amount` is what was cancelled);
- `date_type=settle`: that day's approvals (with the original amount) and that day's
  cancels (of payments made on any day).

Then, for each row of the transaction view (our order found by `tid`, else by `order_no`
of the same merchant):

- state and amounts agree → **matched**;
- Payletter approved it, our order is still unpaid (lost callback) → applied through
  `payments.apply_confirmed` (verification `reconciled`: the same amount/user/method checks
  and state table as a callback) → **fixed**; a contradiction there holds it for review;
- any other disagreement (amount, state, cancelled amount, tid, user) → the order moves to
  `needs_review` (event `mismatch`) → **needs_review**;
- an order we don't know → **needs_review** (reported, nothing invented).

Our orders paid that day (Korea date of Payletter's `transaction_date`, else of `paid_at`)
that Payletter doesn't list are held for review too. The settle view's cancels are matched
to our `done` refunds of that day by tid and amount; a cancel we have no refund for, or a
refund Payletter doesn't list, holds the order for review (unless a refund of it is still
in flight: then the status sync settles it first, and the item is only reported).

One run is one transaction. Payletter is asked first, before the session runs a single
statement (no database lock is held while it answers); then a per-date lock is taken (a
PostgreSQL advisory lock; SQLite admits one writer anyway), every row is compared, fixed
or flagged, and the run is stored with its report. The caller commits once. If Payletter
fails, nothing is compared: the run is stored as `failed` with the error, no order changes.

A second run of the same date changes nothing: applied payments now match, orders held
for review stay there (no new transition, no new shop event), and a discrepancy already
on record gets no second audit row; it is still listed under `needs_review`, with
`"new": false`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import InvalidRequest
from app.gateway import Gateway
from app.kit.korea_time import KST, korea_date
from app.models import AuditEntry, Order, ReconciliationRun, Refund
from app.ops.audit import audit, audit_view
from app.orders.repository import OrderRepository
from app.orders.states import OrderEvent, OrderStatus
from app.orders.transitions import transition
from app.payletter.errors import PayletterError
from app.payletter.models import Transaction, TransactionListQuery, build_request
from app.payments.service import apply_confirmed
from app.reconciliation.repository import ReconciliationRepository
from app.refunds.repository import RefundRepository

log = logging.getLogger(__name__)

ACTION = "reconcile"
VERIFICATION = "reconciled"
S = OrderStatus
UNPAID = frozenset({S.CREATED, S.PENDING, S.AWAITING_DEPOSIT, S.FAILED, S.ABANDONED})
# Our states that mean "a payment exists": Payletter must list it on its day.
PAYMENT_STATES = (S.PAID, S.PARTIALLY_CANCELLED, S.CANCELLED, S.NEEDS_REVIEW)
# Transaction list status_code → the state our order should be in, and how to say it.
LISTED_STATE = {0: S.PAID, 1: S.CANCELLED, 2: S.PARTIALLY_CANCELLED}
LISTED_LABEL = {0: "approved", 1: "fully cancelled", 2: "partially cancelled"}


def yesterday_in_korea(now: datetime | None = None) -> date:
    return korea_date(now or utcnow()) - timedelta(days=1)


def korea_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Korea calendar day, as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=KST)
    return start, start + timedelta(days=1)


# ---- asking Payletter -----------------------------------------------------------------


@dataclass(frozen=True)
class MerchantViews:
    client_id: str
    transactions: list[Transaction]  # date_type=transaction
    settle: list[Transaction]  # date_type=settle


async def fetch_views(gateway: Gateway, day: date) -> list[MerchantViews]:
    """Both views of `day` for every configured merchant; PayletterError if any call fails."""
    views = []
    for client_id in gateway.settings.merchants:
        lists = []
        for date_type in ("transaction", "settle"):
            query = build_request(TransactionListQuery, client_id=client_id, date=day,
                                  date_type=date_type)
            lists.append(list((await gateway.payletter.transaction_list(query)).items))
        views.append(MerchantViews(client_id, lists[0], lists[1]))
    return views


# ---- the report -----------------------------------------------------------------------


@dataclass
class Item:
    """One line of the report: which order, what was found, and why."""

    what: str
    why: str
    order_no: str | None
    tid: str | None
    status: str | None = None  # our order's state after the run; None: not our order
    client_id: str | None = None
    new: bool = True  # first reported by this run (False: already on record)
    audit_id: int | None = None  # the audit row this run wrote for it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    matched: list[Item] = field(default_factory=list)
    fixed: list[Item] = field(default_factory=list)
    needs_review: list[Item] = field(default_factory=list)


# ---- the run --------------------------------------------------------------------------


async def reconcile(session: AsyncSession, gateway: Gateway, day: date, *, actor: str
                    ) -> ReconciliationRun:
    """Reconcile `day` (a Korea date) and store the run; the caller commits.

    Call it on a session that has not run a statement in its transaction yet: Payletter
    is asked before the database is touched.
    """
    run = await _reconcile(session, gateway, day, actor, once=False)
    assert run is not None  # only a `once` run is ever skipped
    return run


async def reconcile_once(session: AsyncSession, gateway: Gateway, day: date, *, actor: str
                         ) -> ReconciliationRun | None:
    """Like `reconcile`, unless `actor` already completed a run of `day` (None then).

    Checked under the date's lock, so replicas firing at the same moment run it once.
    """
    return await _reconcile(session, gateway, day, actor, once=True)


async def _reconcile(session: AsyncSession, gateway: Gateway, day: date, actor: str, *,
                     once: bool) -> ReconciliationRun | None:
    check_day(day)
    started = utcnow()
    try:
        views = await fetch_views(gateway, day)
    except PayletterError as exc:
        return await _store_failed(session, gateway, day, actor, started, exc)
    repo = ReconciliationRepository(session)
    await repo.lock_date(day.isoformat())
    if once and await completed_by(repo, day, actor):
        return None
    return await _Run(session, day, actor, views).run(started)


async def completed_by(repo: ReconciliationRepository, day: date, actor: str) -> bool:
    runs = await repo.runs(day=day.isoformat(), status="completed")
    return any(run.report.get("actor") == actor for run in runs)


def check_day(day: date) -> None:
    if day > korea_date(utcnow()):
        raise InvalidRequest(f"{day.isoformat()} has not begun yet in Korea", field="date")


async def _store_failed(session: AsyncSession, gateway: Gateway, day: date, actor: str,
                        started: datetime, exc: PayletterError) -> ReconciliationRun:
    log.warning("reconciliation of %s failed: %s", day, exc)
    report = {"actor": actor, "merchants": list(gateway.settings.merchants), "error": str(exc),
              "matched": [], "fixed": [], "needs_review": []}
    return await ReconciliationRepository(session).add(ReconciliationRun(
        date=day.isoformat(), started_at=started, finished_at=utcnow(), status="failed",
        matched=0, fixed=0, needs_review=0, report=report))


class _Run:
    def __init__(self, session: AsyncSession, day: date, actor: str,
                 views: list[MerchantViews]) -> None:
        self.session, self.day, self.actor, self.views = session, day, actor, views
        self.repo = ReconciliationRepository(session)
        self.orders = OrderRepository(session)
        self.refunds = RefundRepository(session)
        self.report = Report()
        self.seen: set[int] = set()  # ids of our orders some transaction row spoke of
        self.run_row: ReconciliationRun | None = None

    @property
    def client_ids(self) -> list[str]:
        return [view.client_id for view in self.views]

    async def run(self, started: datetime) -> ReconciliationRun:
        # Stored first (in this transaction) so every audit row can name its run.
        self.run_row = await self.repo.add(ReconciliationRun(
            date=self.day.isoformat(), started_at=started, status="running",
            matched=0, fixed=0, needs_review=0, report={}))
        for view in self.views:
            approvals = {row.tid: row for row in view.settle if row.status_code == 0}
            for row in view.transactions:
                await self._payment(view.client_id, row, approvals.get(row.tid))
        await self._unlisted_payments()
        await self._cancels()
        return await self._finish()

    async def _finish(self) -> ReconciliationRun:
        run, report = self.run_row, self.report
        assert run is not None
        run.status = "completed"
        run.finished_at = utcnow()
        run.matched, run.fixed = len(report.matched), len(report.fixed)
        run.needs_review = len(report.needs_review)
        run.report = {
            "actor": self.actor,
            "merchants": self.client_ids,
            "listed": {"transaction": sum(len(v.transactions) for v in self.views),
                       "settle": sum(len(v.settle) for v in self.views)},
            "error": None,
            "matched": [item.to_json() for item in report.matched],
            "fixed": [item.to_json() for item in report.fixed],
            "needs_review": [item.to_json() for item in report.needs_review],
        }
        await self.session.flush()
        log.info("reconciliation of %s: matched=%d fixed=%d needs_review=%d (new %d)",
                 self.day, run.matched, run.fixed, run.needs_review,
                 sum(item.new for item in report.needs_review))
        return run

    # -- the transaction view: every payment of the day, as it stands now --

    async def _payment(self, client_id: str, row: Transaction,
                       approval: Transaction | None) -> None:
        evidence = _evidence("transaction", row, approval)
        order = await self._find(client_id, row)
        label = LISTED_LABEL[row.status_code]
        if order is None:
            await self._needs_human(
                "unknown_order",
                f"Payletter lists a payment of order {row.order_no!r} ({label}, "
                f"{row.amount} won) that we don't have", evidence,
                order_no=row.order_no, tid=row.tid, client_id=client_id)
            return
        self.seen.add(order.id)
        status = OrderStatus(order.status)
        if status is S.NEEDS_REVIEW:
            await self._in_review(order, row.tid, evidence)
        elif row.status_code == 0 and status in UNPAID:
            await self._apply_lost(client_id, order, row, evidence)
        elif problems := self._differences(client_id, order, row, approval):
            await self._disagree(order, row.tid, "mismatch", "; ".join(problems), evidence)
        else:
            self.report.matched.append(Item(
                "payment", f"Payletter: {label}; ours: {order.status}", order.order_no,
                row.tid, order.status, order.client_id))

    async def _find(self, client_id: str, row: Transaction) -> Order | None:
        """Our order for a Payletter row, row-locked and fresh."""
        order = await self.repo.order_by_tid(row.tid)
        if order is None and row.order_no:
            order = await self.repo.order_of_merchant(client_id, row.order_no)
        if order is None:
            return None
        return await self.orders.lock_by_order_no(order.order_no)

    def _differences(self, client_id: str, order: Order, row: Transaction,
                     approval: Transaction | None) -> list[str]:
        label = LISTED_LABEL[row.status_code]
        if OrderStatus(order.status) in UNPAID:  # a payment we never heard of, since cancelled
            return [f"Payletter has this order's payment {row.tid} ({label}, {row.amount} won "
                    f"cancelled); we never applied it (order is {order.status})"]
        problems = []
        if OrderStatus(order.status) is not LISTED_STATE[row.status_code]:
            problems.append(f"Payletter says {label}, our order is {order.status}")
        if order.tid != row.tid:
            problems.append(f"Payletter's tid {row.tid} is not the order's tid {order.tid}")
        if order.client_id != client_id:
            problems.append(f"listed under merchant {client_id}, the order is {order.client_id}'s")
        approved = approval.amount if approval else row.amount if row.status_code == 0 else None
        if approved is not None and approved != order.amount:
            problems.append(f"Payletter approved {approved} won, the order is for {order.amount}")
        if row.status_code != 0 and row.amount != order.cancelled_amount:
            problems.append(f"Payletter cancelled {row.amount} won, we have "
                            f"{order.cancelled_amount} cancelled")
        if row.user_id != order.user_id:
            problems.append(f"user_id {row.user_id!r} != order user_id {order.user_id!r}")
        return problems

    async def _apply_lost(self, client_id: str, order: Order, row: Transaction,
                          evidence: dict[str, Any]) -> None:
        outcome = await apply_confirmed(
            self.session, order.order_no, tid=row.tid, amount=row.amount, user_id=row.user_id,
            pgcode=row.pgcode, verification=VERIFICATION, extra=_result_extra(row))
        order = outcome.order or order
        if outcome.outcome == "applied":
            why = (f"Payletter approved it on {self.day} ({row.amount} won); "
                   "no callback or return reached us")
            entry = await self._audit("applied", "lost_callback", why, evidence, order=order,
                                      tid=row.tid)
            self.report.fixed.append(Item("lost_callback", why, order.order_no, row.tid,
                                          order.status, client_id, audit_id=entry.id))
        elif outcome.outcome == "duplicate":
            self.report.matched.append(Item("payment", "already applied", order.order_no,
                                            row.tid, order.status, client_id))
        elif outcome.transition is not None:  # held for review by the payment checks
            entry = await self._audit("flagged", "payment_mismatch", outcome.message, evidence,
                                      order=order, tid=row.tid)
            self.report.needs_review.append(Item("payment_mismatch", outcome.message,
                                                 order.order_no, row.tid, order.status,
                                                 client_id, audit_id=entry.id))
        else:
            await self._needs_human("not_applied", outcome.message, evidence, order=order,
                                    tid=row.tid)

    # -- our payments of the day that Payletter doesn't list --

    async def _unlisted_payments(self) -> None:
        start, end = korea_day_bounds(self.day)
        listed = {row.tid for view in self.views for row in view.transactions}
        ours = await self.repo.orders_paid_between(start, end, self.client_ids,
                                                   [s.value for s in PAYMENT_STATES])
        for found in ours:
            if found.id in self.seen or found.tid in listed:
                continue
            order = await self.orders.lock_by_order_no(found.order_no)
            if order is None or OrderStatus(order.status) not in PAYMENT_STATES:
                continue
            self.seen.add(order.id)
            why = (f"we have its payment {order.tid} ({order.amount} won, {self.day}); "
                   "Payletter does not list it")
            evidence = {"view": "transaction", "absent": order.tid,
                        "listed": len(listed), "date": self.day.isoformat()}
            if order.status == S.NEEDS_REVIEW:
                await self._in_review(order, order.tid, evidence)
            else:
                await self._disagree(order, order.tid, "not_listed", why, evidence)

    # -- the settle view: that day's cancels against our refunds --

    async def _cancels(self) -> None:
        start, end = korea_day_bounds(self.day)
        unmatched = await self.repo.refunds_done_between(start, end, self.client_ids)
        for view in self.views:
            for row in view.settle:
                if row.status_code != 0:
                    await self._cancel(view.client_id, row, unmatched)
        for refund, found in unmatched:  # ours, with no cancel at Payletter that day
            order = await self.orders.lock_by_order_no(found.order_no)
            assert order is not None
            cancelled = refund.cancel_date.astimezone(KST) if refund.cancel_date else None
            evidence = {"view": "settle", "absent": {
                "refund_id": refund.id, "kind": refund.kind, "amount": refund.amount,
                "cid": refund.cid, "cancel_date": cancelled.isoformat() if cancelled else None}}
            await self._disagree(
                order, order.tid, "refund_not_listed",
                f"our refund #{refund.id} ({refund.kind}, {refund.amount} won) is not among "
                f"Payletter's cancels of {self.day}", evidence)

    async def _cancel(self, client_id: str, row: Transaction,
                      unmatched: list[tuple[Refund, Order]]) -> None:
        """One cancel Payletter made that day: our done refund of that tid and amount."""
        pair = next(((refund, order) for refund, order in unmatched
                     if order.tid == row.tid and refund.amount == row.amount), None)
        if pair is not None:
            unmatched.remove(pair)
            refund, ours = pair
            self.report.matched.append(Item(
                "cancel", f"Payletter's cancel of {row.amount} won is our refund #{refund.id}",
                ours.order_no, row.tid, ours.status, ours.client_id))
            return
        evidence = _evidence("settle", row)
        order = await self._find(client_id, row)
        if order is None:
            await self._needs_human(
                "unknown_cancel", f"Payletter lists a cancel ({row.amount} won) of a payment of "
                f"order {row.order_no!r} that we don't have", evidence,
                order_no=row.order_no, tid=row.tid, client_id=client_id)
            return
        await self._disagree(
            order, row.tid, "cancel_unmatched",
            f"Payletter cancelled {row.amount} won on {self.day}; we have no such refund",
            evidence)

    # -- the three ways a discrepancy is recorded --

    async def _disagree(self, order: Order, tid: str | None, what: str, why: str,
                        evidence: dict[str, Any]) -> None:
        """Hold the order for review; if it already is, report (and audit once)."""
        if await self.refunds.in_flight_for(order.id) is not None:
            why = f"{why}; a refund of this order is in flight: the status sync settles it first"
            await self._needs_human(what, why, evidence, order=order, tid=tid)
            return
        moved = await transition(self.session, order, OrderEvent.MISMATCH,
                                 reason=f"reconciliation of {self.day}: {why}")
        if moved is None:
            await self._needs_human(what, why, evidence, order=order, tid=tid)
            return
        log.warning("reconciliation of %s: order %s held for review: %s", self.day,
                    order.order_no, why)
        entry = await self._audit("flagged", what, why, evidence, order=order, tid=tid)
        self.report.needs_review.append(Item(what, why, order.order_no, tid, order.status,
                                             order.client_id, audit_id=entry.id))

    async def _in_review(self, order: Order, tid: str | None, evidence: dict[str, Any]) -> None:
        why = f"the order is held for review: {order.review_reason or 'no reason recorded'}"
        await self._needs_human("in_review", why, evidence, order=order, tid=tid,
                                any_prior=True)

    async def _needs_human(self, what: str, why: str, evidence: dict[str, Any], *,
                           order: Order | None = None, order_no: str | None = None,
                           tid: str | None = None, client_id: str | None = None,
                           any_prior: bool = False) -> None:
        """Report it; write an audit row unless one about the same thing exists already
        (`any_prior`: any reconciliation audit row of this order and tid will do)."""
        if order is not None:
            order_no, client_id = order.order_no, order.client_id
        prior = await self.repo.audits(order_no)
        known = any(entry.detail.get("tid") == tid
                    and (any_prior or entry.detail.get("what") == what) for entry in prior)
        audit_id = None
        if not known:
            entry = await self._audit("needs_human", what, why, evidence, order=order,
                                      order_no=order_no, tid=tid)
            audit_id = entry.id
        self.report.needs_review.append(Item(
            what, why, order_no, tid, order.status if order is not None else None, client_id,
            new=not known, audit_id=audit_id))

    async def _audit(self, outcome: str, what: str, why: str, evidence: dict[str, Any], *,
                     order: Order | None, tid: str | None,
                     order_no: str | None = None) -> AuditEntry:
        assert self.run_row is not None
        return await audit(self.session, actor=self.actor, action=ACTION, outcome=outcome,
                           order=order, order_no=order_no, what=what, why=why, tid=tid,
                           date=self.day.isoformat(), run_id=self.run_row.id,
                           evidence=evidence)


def _evidence(view: str, row: Transaction, approval: Transaction | None = None
              ) -> dict[str, Any]:
    """The Payletter row(s) a decision rests on, as Payletter sent them (parsed)."""
    evidence: dict[str, Any] = {"view": view, "row": row.model_dump(mode="json")}
    if approval is not None and approval is not row and row.status_code != 0:
        evidence["approval"] = approval.model_dump(mode="json")
    return evidence


def _result_extra(row: Transaction) -> dict[str, Any]:
    """What a callback would have told us that the list row also says."""
    extra: dict[str, Any] = {
        "transaction_date": row.transaction_date.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if row.cid:
        extra["cid"] = row.cid
    return extra


# ---- views ----------------------------------------------------------------------------


def run_summary(run: ReconciliationRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "date": run.date,
        "status": run.status,
        "actor": run.report.get("actor"),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "counts": {"matched": run.matched, "fixed": run.fixed,
                   "needs_review": run.needs_review},
        "error": run.report.get("error"),
    }


async def run_detail(session: AsyncSession, run: ReconciliationRun) -> dict[str, Any]:
    """The run with its report and the audit rows it wrote."""
    report = run.report
    items = {name: list(report.get(name) or []) for name in ("matched", "fixed", "needs_review")}
    ids = [item["audit_id"] for group in items.values() for item in group
           if item.get("audit_id") is not None]
    audits = await ReconciliationRepository(session).audits_by_id(ids)
    return {**run_summary(run), "merchants": report.get("merchants", []),
            "listed": report.get("listed"), **items,
            "audit": [audit_view(entry) for entry in audits]}


_TABLE_COLUMNS = ("result", "what", "order_no", "tid", "status", "why")


def report_table(detail: dict[str, Any]) -> str:
    """A run as plain text: a heading, the counts, then one line per item."""
    counts = detail["counts"]
    lines = [
        f"Reconciliation #{detail['id']} of {detail['date']} (Korea time): {detail['status']}",
        f"matched {counts['matched']}, fixed {counts['fixed']}, "
        f"needs review {counts['needs_review']}",
    ]
    if detail.get("error"):
        lines.append(f"error: {detail['error']}")
    rows: list[Sequence[str]] = []
    for result in ("needs_review", "fixed", "matched"):
        for item in detail.get(result) or []:
            mark = "" if item.get("new", True) or result != "needs_review" else " (known)"
            rows.append((result + mark, item["what"], item["order_no"] or "-",
                         item["tid"] or "-", item["status"] or "-", item["why"]))
    if rows:
        widths = [max(len(col), *(len(row[i]) for row in rows))
                  for i, col in enumerate(_TABLE_COLUMNS[:-1])]
        lines.append("")
        for row in [tuple(c.upper() for c in _TABLE_COLUMNS), *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
