"""Bulk orders for query tests and benchmarks: one INSERT … SELECT on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

STATUSES = ("paid", "pending", "failed", "abandoned", "partially_cancelled", "cancelled",
            "needs_review", "paid", "paid", "paid")  # weighted: most orders get paid
PGCODES = ("creditcard", "kakaopay", "mobile", "banktransfer", "virtualaccount", "payco")


async def insert_orders(conn: AsyncConnection, count: int, *, prefix: str = "B",
                        days: int = 60) -> None:
    """`count` orders spread over the last `days` days (PostgreSQL only)."""
    statuses = "ARRAY[" + ",".join(f"'{s}'" for s in STATUSES) + "]"
    pgcodes = "ARRAY[" + ",".join(f"'{p}'" for p in PGCODES) + "]"
    await conn.execute(text(f"""
        INSERT INTO orders (order_no, client_id, pgcode, status, amount, taxfree_amount,
            tax_amount, cancelled_amount, product_name, user_id, request_options,
            payment_details, tid, paid_at, created_at, updated_at)
        SELECT :prefix || lpad(n::text, 8, '0'), 'pay_test',
            ({pgcodes})[1 + n % {len(PGCODES)}],
            ({statuses})[1 + (n * 7) % {len(STATUSES)}],
            1000 + (n * 37) % 99000, 0, 91,
            CASE WHEN ({statuses})[1 + (n * 7) % {len(STATUSES)}] = 'cancelled'
                 THEN 1000 + (n * 37) % 99000
                 WHEN ({statuses})[1 + (n * 7) % {len(STATUSES)}] = 'partially_cancelled'
                 THEN 500 ELSE 0 END,
            'product ' || n, 'user' || (n % 5000), '{{}}', '{{}}',
            CASE WHEN ({statuses})[1 + (n * 7) % {len(STATUSES)}] IN
                 ('paid', 'partially_cancelled', 'cancelled', 'needs_review')
                 THEN 'T' || :prefix || n END,
            CASE WHEN ({statuses})[1 + (n * 7) % {len(STATUSES)}] IN
                 ('paid', 'partially_cancelled', 'cancelled', 'needs_review')
                 THEN now() - make_interval(secs => (n::double precision / :count) * :span)
                 END,
            now() - make_interval(secs => (n::double precision / :count) * :span),
            now() - make_interval(secs => (n::double precision / :count) * :span)
        FROM generate_series(1, :count) AS n
    """), {"prefix": prefix, "count": count, "span": days * 86400})
    await conn.execute(text("ANALYZE orders"))
