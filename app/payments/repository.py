"""Queries of stored deliveries (every return, callback and cancel that arrived), and the
one statement that applies a signed callback on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, get_args

import asyncpg  # type: ignore[import-untyped]  # no stubs; used in one place
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kit.sql import Repository, where_given
from app.models import Delivery
from app.orders.schemas import OrderOut

_INSERT_DELIVERY = insert(Delivery).returning(Delivery.id)  # run on a Connection: plain Core


class DeliveryRepository(Repository):
    async def insert(self, values: dict[str, Any]) -> int:
        """Store one delivery; its id. A plain INSERT, not the unit of work: every request
        to the three Payletter URLs writes one, and nothing reads it back."""
        connection = await self.session.connection()
        return int((await connection.execute(_INSERT_DELIVERY, values)).scalar_one())

    async def get(self, delivery_id: int) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def for_order(self, order_id: int) -> Sequence[Delivery]:
        stmt = select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.id)
        return (await self.session.scalars(stmt)).all()

    async def newest(self, *, kind: str | None = None, outcome: str | None = None,
                     order_no: str | None = None, unacknowledged: bool = False,
                     before_id: int | None = None, limit: int = 100) -> Sequence[Delivery]:
        """Newest first; `before_id` pages on (the smallest id of the previous page)."""
        stmt = where_given(select(Delivery).order_by(Delivery.id.desc()).limit(limit),
                            (Delivery.kind, kind), (Delivery.outcome, outcome),
                            (Delivery.order_no, order_no))
        if unacknowledged:
            stmt = stmt.where(Delivery.response_code != 0)
        if before_id is not None:
            stmt = stmt.where(Delivery.id < before_id)
        return (await self.session.scalars(stmt)).all()


# ---- a signed callback in one round trip (PostgreSQL) ---------------------------------


def _iso_utc(column: str) -> str:
    """A timestamptz as Pydantic writes it in JSON: UTC, "Z", microseconds only when set."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"CASE WHEN extract(microseconds FROM {column})::bigint % 1000000 = 0 "
            f"THEN to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
            f"ELSE to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') END")


def _order_json(row: str) -> str:
    """json_build_object of `row`'s columns in OrderOut's fields and JSON form: the same
    `data` the service's own events carry (tests compare the two)."""
    parts = []
    for name, field in OrderOut.model_fields.items():
        column = f"{row}.{name}"
        is_time = datetime in (field.annotation, *get_args(field.annotation))
        parts.append(f"'{name}', {_iso_utc(column) if is_time else column}")
    return "json_build_object(" + ", ".join(parts) + ")"


# Lock the order, decide, and write everything a verified success writes (the paid columns,
# the transition, the shop's event, the delivery), in one statement: one round trip and,
# run on its own (autocommit), one transaction. Only the two plain outcomes are decided
# here: "applied" (every check the service makes passes) and "duplicate" (the order already
# has this tid and is paid; read without a lock, as nothing of a paid order's tid changes).
# Anything else comes back as "fallback" with nothing written: the service then takes its
# general path, which explains a mismatch, an unknown order, a wrong key and the rest.
# Parameters: $1 order_no, $2 tid, $3 amount, $4 user_id, $5 order pgcodes this result's
# pgcode may not pay, $6 the merchants (client_id) whose key verifies the payhash, $7 paid
# states, $8 the states an approval moves to paid, $9 now, $10-$16 the paid columns (cid,
# paid_pgcode, pay_info, card_info, install_month, transaction_date, payment_details patch),
# $17 the transition's reason, $18 the event id, $19 its timestamp, $20-$30 the delivery.
APPLY_SIGNED_CALLBACK = """
WITH seen AS (
    SELECT id FROM orders
    WHERE order_no = $1 AND tid = $2 AND status = ANY($7::text[])
      AND client_id = ANY($6::text[])
), locked AS (
    SELECT o.id, o.status, o.tid, o.client_id, o.amount, o.user_id, o.pgcode,
           (SELECT x.order_no FROM orders x WHERE x.tid = $2 AND x.id <> o.id LIMIT 1)
               AS holder
    FROM orders o
    WHERE o.order_no = $1 AND NOT EXISTS (SELECT 1 FROM seen)
    FOR NO KEY UPDATE OF o
), decision AS (
    SELECT id, 'duplicate' AS outcome, NULL::text AS from_status FROM seen
    UNION ALL
    SELECT id,
           CASE WHEN NOT client_id = ANY($6::text[]) THEN 'fallback'
                WHEN tid = $2 AND status = ANY($7::text[]) THEN 'duplicate'
                WHEN holder IS NULL AND (tid IS NULL OR tid = $2) AND amount = $3
                     AND user_id = $4 AND NOT pgcode = ANY($5::text[])
                     AND status = ANY($8::text[]) THEN 'applied'
                ELSE 'fallback' END,
           status
    FROM locked
), delivery AS (
    INSERT INTO deliveries (kind, received_at, source_addr, peer_addr, content_type,
                            raw_body, body_bytes, body_sha256, query_string, order_no, tid,
                            order_id, verification, outcome, detail, response_code)
    SELECT $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30,
           d.id, 'payhash_ok', d.outcome,
           CASE WHEN d.outcome = 'duplicate' THEN 'already applied' END, 0
    FROM decision d WHERE d.outcome <> 'fallback'
    RETURNING id
), paid AS (
    UPDATE orders o
    SET status = 'paid', tid = $2, cid = $10, paid_pgcode = $11, pay_info = $12,
        card_info = $13, install_month = $14::int, transaction_date = $15::timestamptz,
        payment_details = CASE WHEN $16::jsonb = '{}'::jsonb THEN o.payment_details
                               ELSE (o.payment_details::jsonb || $16::jsonb)::json END,
        paid_at = $9::timestamptz, updated_at = $9::timestamptz
    FROM decision d
    WHERE o.id = d.id AND d.outcome = 'applied'
    RETURNING o.*
), moved AS (
    INSERT INTO order_transitions (order_id, from_status, to_status, event, reason,
                                   delivery_id, created_at)
    SELECT p.id, d.from_status, p.status, 'approved', $17, (SELECT id FROM delivery), $9
    FROM paid p JOIN decision d ON d.id = p.id
), event AS (
    INSERT INTO outbox_events (event_id, order_id, order_no, type, payload, status,
                               attempts, next_attempt_at, created_at)
    SELECT $18::text, p.id, p.order_no, 'order.paid',
           json_build_object('id', $18::text, 'type', 'order.paid', 'timestamp', $19::text,
                             'data', ORDER_JSON),
           'pending', 0, $9, $9
    FROM paid p
)
SELECT coalesce((SELECT outcome FROM decision), 'fallback') AS outcome,
       (SELECT id FROM delivery) AS delivery_id
""".replace("ORDER_JSON", _order_json("p"))  # names from OrderOut; every value a parameter


async def apply_signed_callback(engine: AsyncEngine, *params: Any) -> tuple[str, int | None]:
    """Run APPLY_SIGNED_CALLBACK on its own connection, autocommit: (outcome, delivery id).

    Raw asyncpg, not the ORM: this statement is the whole of a callback's database work.
    A unique violation (another order took the tid in the same moment) is a "fallback":
    the general path sees that order and holds this one for review.
    """
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        try:
            row = await raw.fetchrow(APPLY_SIGNED_CALLBACK, *params)
        except asyncpg.UniqueViolationError:
            return "fallback", None
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # As SQLAlchemy would report it: the error handler answers "please redeliver".
            await connection.invalidate()
            raise OperationalError("apply signed callback", None, exc) from exc
    return str(row["outcome"]), row["delivery_id"]
