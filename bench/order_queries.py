"""Order-table query latency with 100,000 orders on PostgreSQL, against raw SQL.

    make bench-queries      (or: python -m bench.order_queries [--rows 100000] [--requests 300])

Starts the service as a real uvicorn process (one worker, --no-proxy-headers) on a fresh
PostgreSQL database seeded with --rows orders, then times GET /orders for a set of filters
from this process over loopback. The baseline, measured in the same run, is the same page
and totals queries sent straight to PostgreSQL with asyncpg: the ratio says what the API
adds (HTTP, auth, validation, the ORM, JSON). Results go to docs/bench-order-queries.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from app.db import create_engine
from harness.bulk import insert_orders
from harness.postgres import find_postgres, run_migrations
from harness.processes import start_service

ROOT = Path(__file__).resolve().parent.parent
OPS = "bench-ops-token"

# name → (query parameters, the equivalent SQL page query, the equivalent totals query)
PAGE = ("SELECT * FROM orders WHERE {w} ORDER BY created_at DESC, id DESC LIMIT 51")
TOTALS = "SELECT count(*), coalesce(sum(amount),0), coalesce(sum(cancelled_amount),0) " \
         "FROM orders WHERE {w}"
SCENARIOS: dict[str, tuple[dict[str, str], str]] = {
    "newest page, no filter": ({}, "true"),
    "status=paid": ({"status": "paid"}, "status = 'paid'"),
    "status=paid & pgcode=kakaopay": ({"status": "paid", "pgcode": "kakaopay"},
                                      "status = 'paid' AND pgcode = 'kakaopay'"),
    "needs_review queue": ({"needs_review": "true"}, "status = 'needs_review'"),
    "user_id": ({"user_id": "user42"}, "user_id = 'user42'"),
    "created, one Korea day + paid": (
        {"created_from": "{day}", "created_to": "{day}", "status": "paid"},
        "status = 'paid' AND created_at >= '{day} 00:00+09'::timestamptz "
        "AND created_at < '{day} 00:00+09'::timestamptz + interval '1 day'"),
}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def time_api(url: str, params: dict[str, str], n: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {OPS}"}
                                 ) as client:
        for _ in range(10):  # warm-up
            (await client.get("/orders", params=params)).raise_for_status()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            r = await client.get("/orders", params=params)
            samples.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
        return samples


async def time_sql(dsn: str, where: str, n: int) -> list[float]:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(10):
            await conn.fetch(PAGE.format(w=where))
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await conn.fetch(PAGE.format(w=where))
            await conn.fetchrow(TOTALS.format(w=where))
            samples.append((time.perf_counter() - start) * 1000)
        return samples
    finally:
        await conn.close()


async def seed(url: str, rows: int) -> str:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await insert_orders(conn, rows)
    async with engine.connect() as conn:
        from sqlalchemy import text

        day = (await conn.execute(text(
            "SELECT ((now() AT TIME ZONE 'Asia/Seoul') - interval '10 days')::date"))).scalar()
    await engine.dispose()
    return str(day)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--output", default=str(ROOT / "docs" / "bench-order-queries.md"))
    args = parser.parse_args()

    server = find_postgres()
    if server is None:
        sys.exit("no PostgreSQL: set TEST_DATABASE_URL or install the server binaries")
    url = server.create_database("bench_orders")
    try:
        run_migrations(url)
        day = asyncio.run(seed(url, args.rows))
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        logs = Path(tempfile.mkdtemp(prefix="bench-"))
        service = start_service(logs, database_url=url, simulator_url="http://127.0.0.1:9",
                                extra_env={"OPS_API_TOKEN": OPS, "SYNC_SWEEPER": "false",
                                           "RECONCILE_DAILY_AT": "off"})
        try:
            rows = []
            for name, (params, where) in SCENARIOS.items():
                params = {k: v.format(day=day) for k, v in params.items()}
                api = asyncio.run(time_api(service.url, params, args.requests))
                sql = asyncio.run(time_sql(dsn, where.format(day=day), args.requests))
                rows.append((name, statistics.median(api), percentile(api, 95),
                             percentile(api, 99), percentile(sql, 95),
                             percentile(api, 95) / percentile(sql, 95)))
                print(f"{name:34s} p50 {rows[-1][1]:6.1f} ms  p95 {rows[-1][2]:6.1f} ms  "
                      f"p99 {rows[-1][3]:6.1f} ms  | raw SQL p95 {rows[-1][4]:5.1f} ms  "
                      f"ratio {rows[-1][5]:4.1f}x", flush=True)
        finally:
            service.stop()
    finally:
        server.close()
    write_report(Path(args.output), rows, args)


def write_report(path: Path, rows: list[tuple[str, float, float, float, float, float]],
                 args: argparse.Namespace) -> None:
    worst = max(r[2] for r in rows)
    lines = [
        "# Order queries: GET /orders latency",
        "",
        f"Measured by `make bench-queries` on {time.strftime('%Y-%m-%d')}: {args.rows:,} "
        f"orders on PostgreSQL, {args.requests} sequential requests per filter after 10 "
        f"warm-ups, one uvicorn worker, loopback HTTP; {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}.",
        "Each request is one page of 50 orders plus the totals (count, amount, refunded) of "
        "everything the filter matches. Baseline: the same two queries sent straight to "
        "PostgreSQL with asyncpg in the same run.",
        "",
        "| filter | p50 ms | p95 ms | p99 ms | raw SQL p95 ms | API/SQL (p95) |",
        "|---|---|---|---|---|---|",
        *[f"| {n} | {a:.1f} | {b:.1f} | {c:.1f} | {d:.1f} | {e:.1f}x |"
          for n, a, b, c, d, e in rows],
        "",
        f"Target: p95 of a filtered page under 50 ms. Worst p95 here: {worst:.1f} ms "
        f"({'met' if worst < 50 else 'NOT met'}).",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
