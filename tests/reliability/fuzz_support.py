"""Shared pieces of the hostile-input and permutation tests: budgets, strategies, snapshots.

Budgets: CI runs the bounded form (a fixed, derandomized set of examples, so a red CI is
reproducible); `RELIABILITY_SCALE=full` (the soak) runs many more, freshly random each time.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

FULL = os.environ.get("RELIABILITY_SCALE", "").strip().lower() == "full"


def scaled(ci: int, full: int) -> int:
    return full if FULL else ci


def budget(ci: int, full: int) -> settings:
    """Hypothesis settings for `ci` examples in CI, `full` under RELIABILITY_SCALE=full."""
    return settings(
        max_examples=scaled(ci, full),
        deadline=None,  # database round trips vary; a deadline would only add flakiness
        derandomize=not FULL,
        database=None,  # nothing written into the work tree
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the fixtures are the app and its DB: shared
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# ---- what hostile text looks like ----------------------------------------------------

KOREAN = "가나다라마바사아자차카타파하한글결제페이레터주문번호"
CONTROL = "".join(chr(c) for c in range(32)) + "\x7f\x85\u2028\u2029\u200b\ufeff"

# Anything a str can hold, lone surrogates included (JSON's "\ud800" decodes to one).
any_char = st.characters(codec=None, exclude_categories=())
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(st.sampled_from(KOREAN + CONTROL + "\x00'\"<>&%;\\ "), max_size=40),
    st.sampled_from(["", " ", "\x00", "null", "NaN", "-0", "1e309", "٣", "１０００",
                     "1,000", "1000.0", "0x3e8", "+1000", " 1000", "1000\n", "\ud800",
                     "'; DROP TABLE orders; --", "<script>alert(1)</script>",
                     "A" * 300, "한" * 70, "²", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
                     "00000000000000", "2026-02-30 12:00:00"]),
)
huge_int = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, -1000, 1, 999, 1000, 1001, 2**31, 2**63, -(2**63), 10**12,
                     10**12 + 1, 10**400]),
)
scalar = st.one_of(
    st.none(), st.booleans(), huge_int,
    st.floats(allow_nan=True, allow_infinity=True), hostile_text,
)
junk = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(hostile_text, inner, max_size=3)),
    max_leaves=8,
)
hexish = st.text(st.sampled_from(string.hexdigits), min_size=60, max_size=68)


# ---- the state that bad input must not touch ----------------------------------------


@dataclass(frozen=True)
class Snapshot:
    orders: tuple[tuple[Any, ...], ...]
    counts: tuple[tuple[str, int], ...]

    def differences(self, other: Snapshot) -> list[str]:
        problems = []
        mine, theirs = dict((o[0], o) for o in self.orders), dict((o[0], o) for o in
                                                                   other.orders)
        for order_no in sorted(set(mine) | set(theirs)):
            if mine.get(order_no) != theirs.get(order_no):
                problems.append(f"order {order_no!r}: {mine.get(order_no)} -> "
                                f"{theirs.get(order_no)}")
        for (table, before), (_, after) in zip(self.counts, other.counts, strict=True):
            if before != after:
                problems.append(f"{table}: {before} rows -> {after}")
        return problems


# Rows that only a legitimate change may add (deliveries are expected: invariant 4).
STATE_TABLES = ("order_transitions", "outbox_events", "refunds", "billkeys",
                "idempotency_keys", "reconciliation_runs")


async def snapshot(engine: AsyncEngine) -> Snapshot:
    async with engine.connect() as conn:
        orders = (await conn.execute(text(
            "SELECT order_no, status, tid, cid, amount, cancelled_amount, user_id, paid_at, "
            "review_reason, last_error, updated_at FROM orders ORDER BY order_no"))).all()
        counts = []
        for table in STATE_TABLES:
            count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            counts.append((table, int(count)))
    return Snapshot(tuple(tuple(row) for row in orders), tuple(counts))


async def delivery_outcomes_since(engine: AsyncEngine, after_id: int) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT outcome, verification FROM deliveries WHERE id > :id ORDER BY id"),
            {"id": after_id})).all()
    return [(str(r[0]), str(r[1])) for r in rows]


async def last_delivery_id(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        value = (await conn.execute(text("SELECT max(id) FROM deliveries"))).scalar()
    return int(value or 0)
