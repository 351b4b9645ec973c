"""The load benchmark's own parts (bench/load.py), so `make bench` doesn't rot unnoticed:
its seeded orders and callback bodies are what the service applies, its report replaces
only its own section, and its profile summary reads py-spy's folded stacks."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from bench.load import BEGIN, END, callback_body, seed, summarize_profile, write_report
from tests.support import PAYLETTER_IP, client_for, make_settings, running


async def test_a_seeded_order_takes_its_bench_callback_once(
    postgres_url: str, pg_engine: AsyncEngine
) -> None:
    await seed(postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1), 1, 3)
    async with running(create_app(make_settings(postgres_url))) as app, \
            client_for(app, peer=PAYLETTER_IP) as payletter:
        first = await payletter.post("/payletter/callback", content=callback_body(2),
                                     headers={"content-type": "application/json"})
        again = await payletter.post("/payletter/callback", content=callback_body(2),
                                     headers={"content-type": "application/json"})
    assert first.json() == again.json() == {"code": 0, "message": ""}
    async with pg_engine.connect() as conn:
        outcomes = (await conn.execute(text(
            "SELECT outcome FROM deliveries ORDER BY id"))).scalars().all()
        statuses = (await conn.execute(text(
            "SELECT order_no, status FROM orders ORDER BY order_no"))).all()
    assert outcomes == ["applied", "duplicate"]
    assert [tuple(row) for row in statuses] == [
        ("BENCH000000001", "pending"), ("BENCH000000002", "paid"), ("BENCH000000003", "pending")]


def test_the_report_replaces_only_its_own_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Title\n\nby hand\n\n{BEGIN}\nold numbers\n{END}\n\nmore by hand\n")
    write_report(page, f"{BEGIN}\nnew numbers\n{END}")
    assert page.read_text() == (f"# Title\n\nby hand\n\n{BEGIN}\nnew numbers\n{END}\n\n"
                                "more by hand\n")


def test_the_profile_summary_reads_folded_stacks(tmp_path: Path) -> None:
    folded = tmp_path / "profile.folded"
    main = ("_run_module_as_main (<frozen runpy>:198);RequestIdMiddleware.__call__ "
            "(/work/app/observability.py:52);callback (/work/app/payments/endpoints.py:130)")
    folded.write_text("\n".join([
        f"{main};receive_signed_callback (/work/app/payments/service.py:150);"
        "apply_signed_callback (/work/app/payments/repository.py:160);"
        "Connection.fetchrow (/x/site-packages/asyncpg/connection.py:320) 3",
        f"{main};receive_signed_callback (/work/app/payments/service.py:140);"
        "verify_payhash (/work/app/payletter/payhash.py:30) 1",
        "Session.flush (/x/site-packages/sqlalchemy/orm/session.py:4626) 4",
        "Thread._bootstrap (threading.py:1002);Condition.wait (threading.py:327) 50",
    ]) + "\n")
    summary = summarize_profile(folded)
    assert summary["total"] == 8  # the idle worker thread is left out
    assert dict(summary["layers"]) == {"asyncpg": 3, "app (our code)": 1, "SQLAlchemy": 4}
    steps = dict(summary["steps"])
    assert steps["POST /payletter/callback handler"] == 4
    assert steps["· the one-statement path"] == 4
    assert steps["· · the statement (lock, decide, write all)"] == 3
    assert steps["· · payhash"] == 1
    assert steps["ORM flush, synchronous part (unit of work, in a greenlet)"] == 4
