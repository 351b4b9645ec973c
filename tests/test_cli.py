"""The operator CLI through click's runner (and once as a real process): list, show, export,
cancel, sync, delivery replay, errors; the export of 100,000 rows in bounded memory."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import CliContext, cli
from app.db import create_sessionmaker
from app.kit.korea_time import KST
from app.models import Order
from app.orders.queries import CSV_COLUMNS
from app.settings import Settings
from tests.sim_harness import SimGateway, sim_gateway
from tests.support import make_settings, scalar

ROOT = Path(__file__).resolve().parent.parent


# ---- harness ----------------------------------------------------------------------------


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url) as gateway:
        # approve answers once the callback's first attempt is over: no stragglers.
        await gateway.sim.post("/_sim/faults", json={"callback_before_return": True})
        yield gateway


def settings_of(gw: SimGateway) -> Settings:
    settings: Settings = gw.service.state.gateway.settings
    return settings


async def invoke(target: SimGateway | Settings | None, *args: str, input: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> Result:
    """Run the CLI in a worker thread (it runs its own event loop): pointed at the
    simulator when given one, else at the settings given, else at the environment's."""
    if isinstance(target, SimGateway):
        obj = CliContext(settings=settings_of(target), payletter_transport=transport
                         or httpx.ASGITransport(app=target.simulator))
    else:
        obj = CliContext(settings=target, payletter_transport=transport)
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), input=input, obj=obj,
                                   catch_exceptions=False)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


async def paid_order(gw: SimGateway, **overrides: Any) -> dict[str, Any]:
    order = await gw.create_order(**overrides)
    await gw.pay(order)
    assert (await gw.order(order["order_no"]))["status"] == "paid"
    return order


async def seed(engine: AsyncEngine, *orders: dict[str, Any]) -> None:
    """Orders written straight to the table (created_at etc. as the test says)."""
    now = datetime.now(UTC)
    async with create_sessionmaker(engine)() as session:
        for i, values in enumerate(orders):
            row: dict[str, Any] = {
                "order_no": f"S{i:05d}", "client_id": "pay_test", "pgcode": "creditcard",
                "status": "paid", "amount": 1000, "taxfree_amount": 0, "tax_amount": 91,
                "cancelled_amount": 0, "product_name": "원두 1kg", "user_id": "buyer",
                "request_options": {}, "payment_details": {},
                "created_at": now - timedelta(minutes=i), "updated_at": now,
            }
            row.update(values)
            if row["status"] == "paid":
                row.setdefault("paid_at", row["created_at"])
                row.setdefault("tid", f"T{row['order_no']}")
            session.add(Order(**row))
        await session.commit()


# ---- orders list ------------------------------------------------------------------------------


async def test_list_prints_a_table_with_totals_and_a_cursor_for_the_next_page(
    gw: SimGateway,
) -> None:
    big = await paid_order(gw, amount=1_234_567, product_name="커피 원두 (에티오피아)")
    small = await paid_order(gw, amount=12_000)
    pending = await gw.create_order(amount=5_000)

    result = ok(await invoke(gw, "orders", "list", "--limit", "2"))
    lines = result.stdout.splitlines()
    header, first, second = lines[:3]
    assert header.split() == ["ORDER_NO", "STATUS", "PGCODE", "AMOUNT", "REFUNDED", "USER_ID",
                              "CREATED", "(KST)", "PAID", "(KST)", "TID", "PRODUCT"]
    # newest first; amounts with separators, right-aligned under their header
    assert first.split()[:4] == [pending["order_no"], "pending", "creditcard", "5,000"]
    assert second.split()[:4] == [small["order_no"], "paid", "creditcard", "12,000"]
    amount_end = header.index("AMOUNT") + len("AMOUNT")
    assert first[amount_end - len("5,000"):amount_end] == "5,000"
    assert second[amount_end - len("12,000"):amount_end] == "12,000"
    created = datetime.fromisoformat((await gw.order(small["order_no"]))["created_at"])
    assert created.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S") in second
    assert "3 order(s) match: 1,251,567 won, 0 won refunded; showing 2" in result.stdout
    cursor = lines[-1].removeprefix("next page: --cursor ")
    assert cursor != lines[-1]

    rest = ok(await invoke(gw, "orders", "list", "--limit", "2", "--cursor", cursor))
    rest_lines = rest.stdout.splitlines()
    assert rest_lines[1].split()[:4] == [big["order_no"], "paid", "creditcard", "1,234,567"]
    assert rest_lines[1].endswith("커피 원두 (에티오피아)")
    assert "next page" not in rest.stdout
    assert rest.stderr == ""


async def test_list_json_is_what_get_orders_answers(gw: SimGateway) -> None:
    await paid_order(gw, amount=3000, user_id="alice")
    await paid_order(gw, amount=4000, user_id="bob")
    await gw.create_order(amount=5000, user_id="alice")

    result = ok(await invoke(gw, "orders", "list", "--json", "--status", "paid",
                             "--user-id", "alice"))
    body = json.loads(result.stdout)
    api = await gw.ops.get("/orders", params={"status": "paid", "user_id": "alice"})
    assert body == api.json()
    assert [o["amount"] for o in body["items"]] == [3000]
    assert body["totals"] == {"count": 1, "amount": 3000, "refunded": 0}
    assert body["filters"] == {"status": "paid", "user_id": "alice"}


async def test_list_filters_by_status_method_review_and_korea_days(
    database_url: str, engine: AsyncEngine,
) -> None:
    # 00:30 KST on 2 March is 1 March in UTC: the Korea day decides.
    early = datetime(2026, 3, 2, 0, 30, tzinfo=KST)
    await seed(engine,
               {"order_no": "A1", "created_at": early, "paid_at": early},
               {"order_no": "A2", "created_at": early - timedelta(hours=1), "status": "pending",
                "pgcode": "kakaopay"},
               {"order_no": "A3", "created_at": early + timedelta(days=1),
                "status": "needs_review", "review_reason": "amount mismatch"},
               {"order_no": "A4", "created_at": early + timedelta(days=2),
                "status": "cancelled", "cancelled_amount": 1000, "tid": "TA4",
                "paid_at": early + timedelta(days=2)})
    settings = make_settings(database_url)

    async def order_nos(*args: str) -> list[str]:
        result = ok(await invoke(settings, "orders", "list", "--json", *args))
        return [o["order_no"] for o in json.loads(result.stdout)["items"]]

    assert await order_nos() == ["A4", "A3", "A1", "A2"]
    assert await order_nos("--status", "paid,cancelled") == ["A4", "A1"]
    assert await order_nos("--status", "paid", "--status", "pending") == ["A1", "A2"]
    assert await order_nos("--pgcode", "kakaopay") == ["A2"]
    assert await order_nos("--needs-review") == ["A3"]
    assert await order_nos("--no-needs-review") == ["A4", "A1", "A2"]
    assert await order_nos("--created-from", "2026-03-02", "--created-to", "2026-03-02") \
        == ["A1"]
    assert await order_nos("--created-to", "2026-03-01") == ["A2"]
    assert await order_nos("--paid-from", "2026-03-03") == ["A4"]
    assert await order_nos("--order-no", "A3") == ["A3"]
    assert await order_nos("--tid", "TA4") == ["A4"]
    assert await order_nos("--sort", "amount", "--status", "paid,cancelled") == ["A1", "A4"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--created-from", "2026-13-01"], "'2026-13-01' is not a date as YYYY-MM-DD"),
        (["--paid-to", "yesterday"], "'yesterday' is not a date as YYYY-MM-DD"),
        (["--created-from", "2026-03-02", "--created-to", "2026-03-01"],
         "created_to is before created_from"),
        (["--status", "paid,bogus"], "unknown status 'bogus'"),
        (["--sort", "user_id"], "sort must be one of created_at, paid_at, amount"),
        (["--limit", "0"], "0 is not in the range 1<=x<=500"),
        (["--cursor", "not-a-cursor"], "cursor is not one this listing gave out"),
        (["--user-id", "x" * 51], "user_id is longer than 50 characters"),
    ],
)
async def test_bad_filters_exit_2_with_a_clear_message_and_nothing_on_stdout(
    database_url: str, engine: AsyncEngine, args: list[str], message: str,
) -> None:
    result = await invoke(make_settings(database_url), "orders", "list", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


# ---- orders show ------------------------------------------------------------------------------


async def test_show_prints_the_fields_and_the_timeline_in_time_order(gw: SimGateway) -> None:
    order = await paid_order(gw, amount=10_000, user_name="홍길동")
    no = order["order_no"]
    ok(await invoke(gw, "orders", "cancel", no, "--amount", "3000", "--yes"))

    result = ok(await invoke(gw, "orders", "show", no))
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == f"Order {no}"
    fields = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:20]
              if line.startswith("  ") and line.split()}
    assert fields["status"] == "partially_cancelled"
    assert fields["amount"].startswith("10,000 won")
    assert fields["refunded"] == "3,000 won"
    assert fields["user"] == "test_user_id (홍길동)"
    start = lines.index(next(line for line in lines if line.startswith("Timeline (KST)")))
    header, *entries = lines[start + 1:]
    assert header.split() == ["TIME", "WHAT", "DETAIL"]
    kinds = [entry.split()[2] for entry in entries]
    assert kinds.count("delivery") == 2 and kinds.count("refund") == 1
    assert kinds.count("state") == 3  # created → pending → paid → partially_cancelled
    assert "audit" in kinds

    def at(needle: str) -> int:
        [index] = [i for i, entry in enumerate(entries) if needle in entry]
        return index

    # in time order; a transition right after the delivery that caused it
    assert at("created → pending") < at("callback from 127.0.0.1: applied (payhash_ok")
    assert at("callback from 127.0.0.1") + 1 == at("pending → paid")
    assert at("pending → paid") < at("return from") < at("refund  ") \
        < at("paid → partially_cancelled") < at("cli partial_cancel: done")
    refund_id = (await gw.order(no))["refunds"][0]["id"]
    assert any(f"#{refund_id} partial 3,000 won: done" in e and "by cli" in e
               for e in entries)
    assert any("cli partial_cancel: done" in e for e in entries)

    as_json = ok(await invoke(gw, "orders", "show", no, "--json"))
    assert json.loads(as_json.stdout) == await gw.order(no)


async def test_show_of_an_unknown_order_exits_2(gw: SimGateway) -> None:
    result = await invoke(gw, "orders", "show", "NOPE")
    assert result.exit_code == 2
    assert result.stderr == "Error: no order 'NOPE'\n" and result.stdout == ""
    as_json = await invoke(gw, "orders", "show", "NOPE", "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["error"]["type"] == "not_found"


# ---- orders export ----------------------------------------------------------------------------


async def test_export_streams_csv_and_jsonl_with_filters(
    database_url: str, engine: AsyncEngine, tmp_path: Path,
) -> None:
    await seed(engine, *({"order_no": f"E{i}", "amount": 1000 + i} for i in range(7)),
               {"order_no": "E-formula", "product_name": "=HYPERLINK(\"x\")"},
               {"order_no": "E-pending", "status": "pending"})
    settings = make_settings(database_url)

    # stdout, several batches; no BOM on a pipe
    result = ok(await invoke(settings, "orders", "export", "--status", "paid", "--batch", "3"))
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == [f"E{i}" for i in range(7)] + ["E-formula"]
    assert rows[1][CSV_COLUMNS.index("product_name")] == "원두 1kg"
    assert rows[-1][CSV_COLUMNS.index("product_name")] == "'=HYPERLINK(\"x\")"
    assert result.stderr == "exported 8 order(s) to stdout (csv)\n"

    # a file: a BOM for Excel; complete or absent (no .part left behind)
    target = tmp_path / "orders.csv"
    yesterday = (datetime.now(KST) - timedelta(days=1)).date().isoformat()
    ok(await invoke(settings, "orders", "export", "--output", str(target), "--sort",
                    "amount", "--created-from", yesterday))
    content = target.read_text(encoding="utf-8")
    assert content.startswith("\ufefforder_no,status,")
    lines = content.lstrip("\ufeff").splitlines()
    assert len(lines) == 10 and lines[1].startswith("E0,")
    assert list(tmp_path.iterdir()) == [target]

    # JSON lines, as GET /orders lists the orders; a progress line per tenth on stderr
    result = ok(await invoke(settings, "orders", "export", "--format", "jsonl",
                             "--pgcode", "creditcard", "--progress", "--batch", "2"))
    items = [json.loads(line) for line in result.stdout.splitlines()]
    listed = json.loads(ok(await invoke(settings, "orders", "list", "--json")).stdout)
    assert items == listed["items"]
    progress = result.stderr.splitlines()
    assert progress[0] == "exported 2 of 9 orders (22%)"
    assert progress[-2:] == ["exported 9 of 9 orders (100%)",
                             "exported 9 order(s) to stdout (jsonl)"]

    # nothing matches: the header alone
    result = ok(await invoke(settings, "orders", "export", "--tid", "none"))
    assert result.stdout.splitlines() == [",".join(CSV_COLUMNS)]


async def test_a_failed_export_leaves_no_file(
    database_url: str, engine: AsyncEngine, tmp_path: Path,
) -> None:
    target = tmp_path / "missing-dir" / "orders.csv"
    result = await invoke(make_settings(database_url), "orders", "export", "-o", str(target))
    assert result.exit_code == 1
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.output


# ---- cancel, sync, replay ---------------------------------------------------------------------


async def sim_cancels(gw: SimGateway, order: dict[str, Any]) -> list[dict[str, Any]]:
    payment = (await gw.sim.get(f"/_sim/payments/{order['token']}")).json()
    cancels: list[dict[str, Any]] = payment["cancels"]
    return cancels


async def test_cancel_asks_first_and_refunds_through_payletter(gw: SimGateway) -> None:
    order = await paid_order(gw, amount=10_000)
    no = order["order_no"]

    declined = await invoke(gw, "orders", "cancel", no, "--amount", "3000", input="n\n")
    assert declined.exit_code == 1
    assert f"Refund 3,000 won of order {no} (creditcard, paid, 10,000 won, 0 won refunded " \
           "so far)? [y/N]" in declined.stderr
    assert "Aborted!" in declined.stderr and declined.stdout == ""
    assert await sim_cancels(gw, order) == []
    assert await scalar(gw.service.state.gateway.engine, "SELECT count(*) FROM refunds") == 0

    agreed = ok(await invoke(gw, "orders", "cancel", no, "--amount", "3000", input="y\n"))
    refund_id = (await gw.order(no))["refunds"][0]["id"]
    assert agreed.stdout.splitlines() == [
        f"refund #{refund_id} (partial, 3,000 won): done, "
        f"cid {(await sim_cancels(gw, order))[0]['cid']}",
        f"order {no}: partially_cancelled, refunded 3,000 won of 10,000 won"]

    rest = ok(await invoke(gw, "orders", "cancel", no, "--yes", "--json",
                           "--idempotency-key", "ops-42"))
    body = json.loads(rest.stdout)
    assert body["refund"]["status"] == "done" and body["refund"]["amount"] == 7000
    assert body["order"]["status"] == "cancelled"
    assert "Refund" not in rest.stderr  # --yes: no question
    again = ok(await invoke(gw, "orders", "cancel", no, "--yes", "--json",
                            "--idempotency-key", "ops-42"))
    assert json.loads(again.stdout)["refund"]["id"] == body["refund"]["id"]
    assert len(await sim_cancels(gw, order)) == 2

    detail = await gw.order(no)
    assert [(a["actor"], a["action"], a["outcome"]) for a in detail["audit"]] == [
        ("cli", "partial_cancel", "done"), ("cli", "partial_cancel", "done")]
    assert [r["requested_by"] for r in detail["refunds"]] == ["cli", "cli"]


async def test_a_cancel_refused_by_the_rules_exits_2_and_sends_nothing(gw: SimGateway) -> None:
    order = await paid_order(gw, amount=5000)
    result = await invoke(gw, "orders", "cancel", order["order_no"], "--amount", "5001", "--yes")
    assert result.exit_code == 2
    assert result.stderr == "Error: amount must be between 1 and the remaining 5000 won\n"
    assert await sim_cancels(gw, order) == []
    unknown = await invoke(gw, "orders", "cancel", "NOPE")
    assert unknown.exit_code == 2 and "no order 'NOPE'" in unknown.stderr


async def test_sync_applies_a_payment_nobody_told_us_about(gw: SimGateway) -> None:
    order = await gw.create_order(amount=7000)
    no = order["order_no"]
    await gw.sim.post("/_sim/faults", json={"drop_callbacks_for_orders": [no]})
    await gw.pay(order, with_return=False)

    result = ok(await invoke(gw, "orders", "sync", no))
    assert result.stdout == f"{no}: pending → paid (paid)\n"
    detail = await gw.order(no)
    assert detail["status"] == "paid"
    assert [(a["actor"], a["action"], a["outcome"]) for a in detail["audit"]] == [
        ("cli", "sync", "paid")]
    again = ok(await invoke(gw, "orders", "sync", no, "--json"))
    assert json.loads(again.stdout) == {"order_no": no, "status_before": "paid",
                                        "status": "paid", "actions": ["nothing to sync"]}


async def test_sync_when_payletter_is_down_exits_1(gw: SimGateway) -> None:
    order = await gw.create_order()

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = await invoke(gw, "orders", "sync", order["order_no"],
                          transport=httpx.MockTransport(unreachable))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: payments/status failed")
    assert len(result.stderr.splitlines()) == 1


async def test_replaying_an_applied_callback_is_a_duplicate(gw: SimGateway) -> None:
    order = await paid_order(gw)
    no = order["order_no"]
    [callback] = [d for d in (await gw.order(no))["deliveries"] if d["kind"] == "callback"]
    assert callback["outcome"] == "applied"

    result = ok(await invoke(gw, "deliveries", "replay", str(callback["id"]), "--json"))
    body = json.loads(result.stdout)
    assert body["outcome"] == "duplicate" and body["code"] == 0
    assert body["order_no"] == no and body["status"] == "paid"
    detail = await gw.order(no)
    [new] = [d for d in detail["deliveries"] if d["id"] == body["delivery_id"]]
    assert (new["kind"], new["outcome"], new["tid"]) == ("callback", "duplicate",
                                                         callback["tid"])
    assert len(detail["transitions"]) == 2  # created → pending → paid; nothing new

    table = ok(await invoke(gw, "deliveries", "replay", str(callback["id"])))
    assert table.stdout.startswith(f"delivery #{callback['id']} replayed as #")
    assert f"duplicate (payhash_ok, code 0); order {no} is paid" in table.stdout

    missing = await invoke(gw, "deliveries", "replay", "999999")
    assert missing.exit_code == 2 and missing.stderr == "Error: no delivery 999999\n"
    assert (await invoke(gw, "deliveries", "replay", "x")).exit_code == 2


# ---- the rest of the tree ---------------------------------------------------------------------


async def test_webhook_replays_keep_their_exit_codes(
    database_url: str, engine: AsyncEngine,
) -> None:
    settings = make_settings(database_url)
    result = await invoke(settings, "webhooks", "replay", "evt_nope")
    assert (result.exit_code, result.stdout) == (1, "replayed 0 event(s)\n")
    result = ok(await invoke(settings, "webhooks", "replay-dead"))
    assert result.stdout == "replayed 0 event(s)\n"


# serve migrates an SQLite database before it starts; these don't need one.
POSTGRES_SETTINGS = Settings(database_url="postgresql+asyncpg://nobody@127.0.0.1:9/none")


def test_serve_keeps_proxy_headers_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    root = logging.getLogger()
    level = root.level
    try:
        ok(CliRunner().invoke(cli, ["serve", "--port", "9001", "--workers", "2"],
                              obj=CliContext(settings=POSTGRES_SETTINGS)))
        assert root.level == logging.INFO  # the service's own log lines
    finally:
        root.setLevel(level)
    log_config = seen.pop("log_config")
    assert log_config["root"]["handlers"] == ["gateway"]  # every process: one format
    assert seen == {"app": "app.main:app", "host": "127.0.0.1", "port": 9001, "workers": 2,
                    "proxy_headers": False, "log_level": "info", "access_log": False,
                    "timeout_graceful_shutdown": 25}
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # set for the workers only


def test_serve_reads_the_container_s_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GRACEFUL_SHUTDOWN_SECONDS", "7")
    root = logging.getLogger()
    level = root.level
    try:
        ok(CliRunner().invoke(cli, ["serve"], obj=CliContext(settings=POSTGRES_SETTINGS)))
    finally:
        root.setLevel(level)
    assert (seen["port"], seen["workers"], seen["timeout_graceful_shutdown"]) == (8123, 3, 7)
    assert seen["proxy_headers"] is False


async def test_an_unreachable_database_is_one_line_and_exit_1() -> None:
    settings = make_settings("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    result = await invoke(settings, "orders", "list")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output and result.stdout == ""


async def test_bad_configuration_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYLETTER_ENV", "live")
    for name in ("PAYLETTER_CLIENT_ID", "PAYLETTER_PAYMENT_KEY", "PAYLETTER_SEARCH_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = await invoke(None, "orders", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: configuration error: PAYLETTER_CLIENT_ID")


def child_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PAYLETTER_", "SHOP_", "OPS_", "DATABASE_URL"))}
    env.update(DATABASE_URL=database_url, PAYLETTER_ENV="sim", PYTHONPATH=str(ROOT))
    return env


async def test_the_console_entry_runs_as_a_process(
    database_url: str, engine: AsyncEngine,
) -> None:
    await seed(engine, {"order_no": "P1", "amount": 25_000})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "orders", "list", "--json", cwd=ROOT,
        env=child_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert [o["order_no"] for o in json.loads(out)["items"]] == ["P1"]

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "orders", "show", "NOPE", cwd=ROOT,
        env=child_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert (proc.returncode, out, err) == (2, b"", b"Error: no order 'NOPE'\n")


# ---- 100,000 rows in bounded memory (PostgreSQL) ----------------------------------------------

ROWS = 100_000
FEW = 10_000


async def insert_many(engine: AsyncEngine, count: int) -> None:
    """`count` paid orders in one INSERT … SELECT; the first FEW are kakaopay."""
    async with engine.begin() as conn:
        await conn.execute(text("""
            INSERT INTO orders (order_no, client_id, pgcode, status, amount, taxfree_amount,
                tax_amount, cancelled_amount, product_name, user_id, user_name,
                request_options, payment_details, tid, cid, paid_at, transaction_date,
                created_at, updated_at)
            SELECT 'X' || lpad(n::text, 8, '0'), 'pay_test',
                CASE WHEN n <= :few THEN 'kakaopay' ELSE 'creditcard' END, 'paid',
                1000 + n % 99000, 0, 91, 0, '원두 블렌드 ' || n || ' (1kg, 홀빈)',
                'buyer' || n % 5000, '홍길동', '{}', '{}', 'T' || n, 'C' || n,
                now() - make_interval(secs => n), now() - make_interval(secs => n),
                now() - make_interval(secs => n), now()
            FROM generate_series(1, :count) AS n
        """), {"count": count, "few": FEW})
        await conn.execute(text("ANALYZE orders"))


def export_in_child(database_url: str, target: Path, *args: str) -> tuple[int, float]:
    """Run the export as a process; (its peak RSS in KiB, seconds)."""
    started = time.monotonic()
    with open(target.with_suffix(".err"), "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "orders", "export", "--output", str(target),
             *args], cwd=ROOT, env=child_env(database_url), stdout=subprocess.DEVNULL,
            stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, target.with_suffix(".err").read_text()
    return usage.ru_maxrss, time.monotonic() - started  # Linux: KiB


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


async def test_exporting_100000_orders_streams_in_bounded_memory(
    postgres_url: str, pg_engine: AsyncEngine, tmp_path: Path,
) -> None:
    await insert_many(pg_engine, ROWS)
    few, all_rows = tmp_path / "few.csv", tmp_path / "all.csv"
    few_rss, few_seconds = await asyncio.to_thread(
        export_in_child, postgres_url, few, "--pgcode", "kakaopay")
    all_rss, all_seconds = await asyncio.to_thread(
        export_in_child, postgres_url, all_rows, "--progress")

    assert count_lines(few) == FEW + 1
    assert count_lines(all_rows) == ROWS + 1
    with all_rows.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == list(CSV_COLUMNS)
        first = next(reader)
    assert first[0] == "X00000001" and first[CSV_COLUMNS.index("product_name")] == \
        "원두 블렌드 1 (1kg, 홀빈)"
    progress = all_rows.with_suffix(".err").read_text().splitlines()
    assert progress[-2:] == ["exported 100,000 of 100,000 orders (100%)",
                             "exported 100,000 order(s) to " + str(all_rows) + " (csv)"]
    print(f"\npeak RSS exporting {FEW:,} rows: {few_rss / 1024:.1f} MiB "
          f"({few_seconds:.1f} s); {ROWS:,} rows: {all_rss / 1024:.1f} MiB "
          f"({all_seconds:.1f} s); file {all_rows.stat().st_size / 2**20:.1f} MiB")
    # Ten times the rows, (nearly) the same peak: rows are never all held. Holding them would
    # add well over 100 MiB (the file alone is ~20 MiB of text; ORM rows take many times that).
    assert all_rss - few_rss < 20 * 1024
    # The absolute peak depends on the machine's allocator and libraries (107 MiB on one
    # venv, 390 MiB on a fresh CI clone for the 10,000-row run too); the difference above is
    # the proof. This only catches a runaway.
    assert all_rss < 1024 * 1024
