"""Reconciliation against the real simulator (in-process): lost callbacks are applied,
mismatches held for review, a second run changes nothing, every finding is audited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_sessionmaker, utcnow
from app.gateway import Gateway
from app.kit.korea_time import KST
from app.models import Refund
from app.orders.repository import OrderRepository
from app.payletter.models import CancelRequest, PaymentRequest, build_request
from app.reconciliation.repository import ReconciliationRepository
from app.reconciliation.schedule import (
    day_to_reconcile,
    next_daily_run,
    parse_daily_at,
    run_daily,
    run_scheduled,
)
from app.reconciliation.service import reconcile, report_table, run_detail, yesterday_in_korea
from app.settings import ConfigError, load_settings
from tests.sim_harness import SimGateway, sim_gateway
from tests.support import client_for, scalar

# ---- harness ----------------------------------------------------------------------------


@pytest.fixture
def day() -> date:
    """Every payment of a test happens at noon of yesterday, Korea time (the API's default)."""
    return yesterday_in_korea()


@pytest.fixture
async def gw(database_url: str, engine: AsyncEngine, day: date) -> AsyncIterator[SimGateway]:
    async with sim_gateway(database_url) as gateway:
        noon = datetime.combine(day, time(12), tzinfo=KST)
        r = await gateway.sim.post("/_sim/clock", json={"now": noon.isoformat()})
        assert r.status_code == 200, r.text
        # approve answers once the callback's first attempt is over: no stragglers.
        await gateway.sim.post("/_sim/faults", json={"callback_before_return": True})
        yield gateway


def gateway_of(gw: SimGateway) -> Gateway:
    gateway: Gateway = gw.service.state.gateway
    return gateway


async def drop_callbacks(gw: SimGateway, *order_nos: str) -> None:
    faults = (await gw.sim.get("/_sim/faults")).json()
    dropped = [*faults["drop_callbacks_for_orders"], *order_nos]
    await gw.sim.post("/_sim/faults", json={"drop_callbacks_for_orders": dropped})


async def paid(gw: SimGateway, *, lost: bool = False, **overrides: Any) -> dict[str, Any]:
    """An order the buyer paid; `lost`: neither its callback nor its return reached us."""
    order = await gw.create_order(**overrides)
    if lost:
        await drop_callbacks(gw, order["order_no"])
    await gw.pay(order, with_return=False)
    stored = await gw.order(order["order_no"])
    assert stored["status"] == ("pending" if lost else "paid")
    return stored


async def run_reconcile(gw: SimGateway, day: date) -> dict[str, Any]:
    r = await gw.ops.post("/reconciliations", json={"date": day.isoformat()})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def set_order(engine: AsyncEngine, order_no: str, **values: Any) -> None:
    """Change our stored order behind the service's back (the injected discrepancy)."""
    async with create_sessionmaker(engine)() as session, session.begin():
        order = await OrderRepository(session).get_by_order_no(order_no)
        assert order is not None
        for name, value in values.items():
            setattr(order, name, value)


async def tallies(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        result = {}
        for table in ("outbox_events", "audit_log", "order_transitions", "orders", "refunds"):
            sql = f"SELECT count(*) FROM {table}"
            result[table] = (await conn.execute(text(sql))).scalar()
        rows = await conn.execute(text("SELECT order_no, status FROM orders ORDER BY id"))
        result["statuses"] = [tuple(row) for row in rows]
        return result


async def events(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT order_no, type FROM outbox_events ORDER BY id"))
        return [(row[0], row[1]) for row in rows]


def by_order(items: list[dict[str, Any]]) -> dict[str | None, list[str]]:
    found: dict[str | None, list[str]] = {}
    for item in items:
        found.setdefault(item["order_no"], []).append(item["what"])
    return found


def reconcile_audits(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in order["audit"] if a["action"] == "reconcile"]


# ---- the acceptance scenario -------------------------------------------------------------


async def test_lost_callbacks_are_applied_a_mismatch_is_flagged_and_a_second_run_changes_nothing(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    lost = [await paid(gw, lost=True, amount=3000), await paid(gw, lost=True, amount=4000)]
    fine = [await paid(gw, amount=5000), await paid(gw, amount=6000)]
    tampered = await paid(gw, amount=7000)
    await set_order(engine, tampered["order_no"], amount=6900)  # the injected mismatch
    events_before = await events(engine)

    first = await run_reconcile(gw, day)

    assert first["status"] == "completed" and first["date"] == day.isoformat()
    assert first["counts"] == {"matched": 2, "fixed": 2, "needs_review": 1}
    assert sorted(i["order_no"] for i in first["fixed"]) == sorted(o["order_no"] for o in lost)
    assert {i["what"] for i in first["fixed"]} == {"lost_callback"}
    assert sorted(i["order_no"] for i in first["matched"]) == sorted(o["order_no"] for o in fine)
    [flag] = first["needs_review"]
    assert flag["order_no"] == tampered["order_no"] and flag["what"] == "mismatch"
    assert "approved 7000 won, the order is for 6900" in flag["why"]
    assert flag["new"] is True and flag["status"] == "needs_review"

    for order in lost:  # applied, with the reason and Payletter's row as evidence
        now = await gw.order(order["order_no"])
        assert now["status"] == "paid" and now["tid"] and now["transaction_date"]
        assert now["transitions"][-1]["reason"] == f"reconciled tid={now['tid']}"
        [entry] = reconcile_audits(now)
        assert entry["outcome"] == "applied" and entry["actor"] == "ops"
        assert entry["detail"]["what"] == "lost_callback"
        assert entry["detail"]["evidence"]["row"]["tid"] == now["tid"]
        assert entry["detail"]["evidence"]["row"]["amount"] == order["amount"]
        assert entry["detail"]["run_id"] == first["id"]
    held = await gw.order(tampered["order_no"])
    assert held["status"] == "needs_review" and "reconciliation of" in held["review_reason"]
    [entry] = reconcile_audits(held)
    assert entry["outcome"] == "flagged" and entry["detail"]["evidence"]["row"]["amount"] == 7000
    assert len(first["audit"]) == 3  # the run's own audit rows, readable with the run

    new_events = (await events(engine))[len(events_before):]
    assert sorted(new_events) == sorted([(o["order_no"], "order.paid") for o in lost]
                                        + [(tampered["order_no"], "order.needs_review")])

    before = await tallies(engine)
    second = await run_reconcile(gw, day)

    assert await tallies(engine) == before  # no state change, event, transition or audit row
    assert second["counts"] == {"matched": 4, "fixed": 0, "needs_review": 1}
    assert sorted(i["order_no"] for i in second["matched"]) == sorted(
        o["order_no"] for o in [*lost, *fine])
    [known] = second["needs_review"]
    assert known["order_no"] == tampered["order_no"] and known["what"] == "in_review"
    assert known["new"] is False and second["audit"] == []

    listed = (await gw.ops.get("/reconciliations", params={"date": day.isoformat()})).json()
    assert [run["id"] for run in listed] == [second["id"], first["id"]]
    assert listed[1]["counts"] == first["counts"]
    again = await gw.ops.get(f"/reconciliations/{first['id']}")
    assert again.status_code == 200 and again.json() == first


async def test_a_lost_payment_that_contradicts_the_order_is_held_for_review_not_paid(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    order = await paid(gw, lost=True, amount=5000)
    await set_order(engine, order["order_no"], amount=4000)

    report = await run_reconcile(gw, day)

    assert report["counts"] == {"matched": 0, "fixed": 0, "needs_review": 1}
    [item] = report["needs_review"]
    assert item["what"] == "payment_mismatch" and "amount 5000 != order amount 4000" in item["why"]
    now = await gw.order(order["order_no"])
    assert now["status"] == "needs_review" and now["tid"] is None
    assert [a["outcome"] for a in reconcile_audits(now)] == ["flagged"]
    assert await events(engine) == [(order["order_no"], "order.needs_review")]


async def test_a_deposit_whose_callback_was_lost_is_applied(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    order = await gw.create_order(pgcode="virtualaccount", amount=20000)
    issued = await gw.pay(order)  # the return: account issued, no money yet
    assert (await gw.order(order["order_no"]))["status"] == "awaiting_deposit"
    await drop_callbacks(gw, order["order_no"])
    tid = issued["return_fields"]["tid"]
    assert (await gw.sim.post(f"/_sim/virtualaccount/{tid}/deposit")).status_code == 200

    report = await run_reconcile(gw, day)

    assert [(i["order_no"], i["what"], i["status"]) for i in report["fixed"]] == [
        (order["order_no"], "lost_callback", "paid")]
    now = await gw.order(order["order_no"])
    assert now["status"] == "paid" and now["tid"] == tid
    assert [t["to_status"] for t in now["transitions"]][-2:] == ["awaiting_deposit", "paid"]


async def test_unknown_payments_and_payments_payletter_does_not_list_need_a_human(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    # A payment at Payletter for an order we never stored.
    await drop_callbacks(gw, "STRANGER-1")
    window = await gateway_of(gw).payletter.request_payment(build_request(
        PaymentRequest, pgcode="creditcard", client_id="pay_test", user_id="stranger",
        product_name="not ours", return_url="http://shop.test/r",
        callback_url="http://shop.test/cb", amount=5000, order_no="STRANGER-1"))
    assert (await gw.sim.post(f"/_sim/payments/{window.token}/approve")).status_code == 200
    # A payment we have on record that Payletter knows nothing about.
    ghost = await gw.create_order(amount=2000)
    await set_order(engine, ghost["order_no"], status="paid", tid="tpay_test-ghost",
                    transaction_date=datetime.combine(day, time(15), tzinfo=KST),
                    paid_at=utcnow())
    # An amount-0 autopay sign-up moved no money: Payletter needn't list it.
    signup = await gw.create_order(amount=1000, autopay_flag="Y")
    await set_order(engine, signup["order_no"], status="paid", tid="tpay_test-signup",
                    amount=0, tax_amount=0, paid_at=datetime.combine(day, time(16), tzinfo=KST))
    orders_before = await scalar(engine, "SELECT count(*) FROM orders")

    report = await run_reconcile(gw, day)

    assert report["counts"] == {"matched": 0, "fixed": 0, "needs_review": 2}
    assert by_order(report["needs_review"]) == {
        "STRANGER-1": ["unknown_order"], ghost["order_no"]: ["not_listed"]}
    assert await scalar(engine, "SELECT count(*) FROM orders") == orders_before  # none invented
    stranger = await scalar(engine, "SELECT detail FROM audit_log WHERE order_no = 'STRANGER-1' "
                                    "AND order_id IS NULL")
    assert stranger is not None and "tpay_test-" in str(stranger)
    now = await gw.order(ghost["order_no"])
    assert now["status"] == "needs_review" and "does not list it" in now["review_reason"]

    before = await tallies(engine)
    second = await run_reconcile(gw, day)
    assert await tallies(engine) == before
    assert by_order(second["needs_review"]) == {
        "STRANGER-1": ["unknown_order"], ghost["order_no"]: ["in_review"]}
    assert not any(item["new"] for item in second["needs_review"])


async def test_cancels_of_the_day_are_matched_to_our_refunds(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    gateway = gateway_of(gw)
    refunded = await paid(gw, amount=10000)
    r = await gw.ops.post(f"/orders/{refunded['order_no']}/cancel", json={"amount": 3000},
                          headers={"Idempotency-Key": "recon-1"})
    assert r.status_code == 200, r.text
    # Cancelled at Payletter (say, in its merchant console) without a refund of ours.
    behind_our_back = await paid(gw, amount=10000)
    await gateway.payletter.cancel(build_request(
        CancelRequest, client_id="pay_test", user_id=behind_our_back["user_id"],
        tid=behind_our_back["tid"], ip_addr="127.0.0.1"))
    # A refund we think is done that Payletter never made.
    phantom = await paid(gw, amount=10000)
    await set_order(engine, phantom["order_no"], status="partially_cancelled",
                    cancelled_amount=2000)
    # A cancel whose refund is still in flight (unknown): the status sync's to settle.
    in_flight = await paid(gw, amount=10000)
    await gateway.payletter.cancel(build_request(
        CancelRequest, client_id="pay_test", user_id=in_flight["user_id"],
        tid=in_flight["tid"], ip_addr="127.0.0.1"))
    async with create_sessionmaker(engine)() as session, session.begin():
        for order, status in ((phantom, "done"), (in_flight, "unknown")):
            stored = await OrderRepository(session).get_by_order_no(order["order_no"])
            assert stored is not None
            session.add(Refund(order_id=stored.id, kind="partial" if status == "done" else "full",
                               amount=2000 if status == "done" else 10000, status=status,
                               requested_by="ops", cancel_date=datetime.combine(
                                   day, time(13), tzinfo=KST) if status == "done" else None))

    report = await run_reconcile(gw, day)

    assert by_order(report["matched"]) == {refunded["order_no"]: ["payment", "cancel"]}
    review = by_order(report["needs_review"])
    assert review == {
        behind_our_back["order_no"]: ["mismatch", "cancel_unmatched"],
        phantom["order_no"]: ["mismatch", "refund_not_listed"],
        in_flight["order_no"]: ["mismatch", "cancel_unmatched"],
    }
    statuses = {o["order_no"]: (await gw.order(o["order_no"]))["status"]
                for o in (refunded, behind_our_back, phantom, in_flight)}
    assert statuses == {refunded["order_no"]: "partially_cancelled",
                        behind_our_back["order_no"]: "needs_review",
                        phantom["order_no"]: "needs_review",
                        in_flight["order_no"]: "paid"}  # left for the sync, reported only
    flight = [i for i in report["needs_review"] if i["order_no"] == in_flight["order_no"]]
    assert all("in flight" in item["why"] for item in flight)
    assert len(reconcile_audits(await gw.order(behind_our_back["order_no"]))) == 2

    before = await tallies(engine)
    second = await run_reconcile(gw, day)
    assert await tallies(engine) == before
    assert second["counts"] == report["counts"] and second["audit"] == []


# ---- failures, concurrency, the API's edges ---------------------------------------------


async def test_a_payletter_error_fails_the_run_and_changes_nothing(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    order = await paid(gw, lost=True)
    await gw.sim.post("/_sim/faults", json={"api_errors": {"payments/transaction/list": {
        "status": 500, "code": 999, "message": "Internal server error", "times": 3}}})
    before = await tallies(engine)

    r = await gw.ops.post("/reconciliations", json={"date": day.isoformat()})

    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert error["type"] == "payletter_error" and "HTTP 500" in error["message"]
    assert error["run"]["status"] == "failed" and error["run"]["counts"]["fixed"] == 0
    assert await tallies(engine) == before  # only the failed run itself is new
    assert (await gw.order(order["order_no"]))["status"] == "pending"
    [run] = (await gw.ops.get("/reconciliations", params={"date": day.isoformat()})).json()
    assert run["status"] == "failed" and "HTTP 500" in run["error"]
    assert "PLKEY" not in r.text and "MUI3" not in r.text  # no search key in the error

    report = await run_reconcile(gw, day)  # Payletter is back
    assert [i["order_no"] for i in report["fixed"]] == [order["order_no"]]


async def test_concurrent_runs_of_one_date_apply_each_payment_once(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    lost = [await paid(gw, lost=True, amount=1000 + i) for i in range(3)]
    gateway = gateway_of(gw)

    async def one_run() -> dict[str, Any]:
        async with gateway.sessionmaker() as session, session.begin():
            run = await reconcile(session, gateway, day, actor="test")
            return await run_detail(session, run)

    reports = await asyncio.gather(one_run(), one_run(), one_run())

    assert sorted(r["counts"]["fixed"] for r in reports) == [0, 0, 3]
    assert all(r["counts"]["matched"] + r["counts"]["fixed"] == 3 for r in reports)
    assert sorted(await events(engine)) == sorted((o["order_no"], "order.paid") for o in lost)
    assert await scalar(engine, "SELECT count(*) FROM audit_log") == 3


async def test_the_api_takes_the_ops_token_and_a_korea_date(
    gw: SimGateway, day: date,
) -> None:
    async with client_for(gw.service) as anonymous:
        assert (await anonymous.post("/reconciliations", json={})).status_code == 401
        assert (await anonymous.get("/reconciliations")).status_code == 401
    assert (await gw.shop.post("/reconciliations", json={})).status_code == 403
    assert (await gw.shop.get("/reconciliations")).status_code == 403
    assert (await gw.shop.get("/reconciliations/1")).status_code == 403
    assert (await gw.ops.get("/reconciliations/999999")).status_code == 404

    future = (day + timedelta(days=3)).isoformat()
    r = await gw.ops.post("/reconciliations", json={"date": future})
    assert r.status_code == 422 and r.json()["error"]["field"] == "date"
    for bad in ({"date": "2024-13-01"}, {"date": "20240501"}, {"day": "2024-05-01"}):
        assert (await gw.ops.post("/reconciliations", json=bad)).status_code == 422, bad
    assert (await gw.ops.get("/reconciliations", params={"date": "yesterday"})).status_code == 422

    default = await gw.ops.post("/reconciliations")  # no body: yesterday in Korea
    assert default.status_code == 201, default.text
    assert default.json()["date"] == day.isoformat()
    assert default.json()["counts"] == {"matched": 0, "fixed": 0, "needs_review": 0}


# ---- the daily schedule -----------------------------------------------------------------


def kst(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=KST)


@pytest.mark.parametrize(("now", "due"), [
    (kst("2026-11-26T04:29:59"), kst("2026-11-26T04:30:00")),
    (kst("2026-11-26T04:30:00"), kst("2026-11-27T04:30:00")),  # the slot itself has passed
    (kst("2026-11-26T23:59:59"), kst("2026-11-27T04:30:00")),
    # 19:29 UTC is already the next day in Korea (04:29 KST).
    (datetime.fromisoformat("2026-11-25T19:29:00+00:00"), kst("2026-11-26T04:30:00")),
    (datetime.fromisoformat("2026-11-25T19:31:00+00:00"), kst("2026-11-27T04:30:00")),
    (kst("2026-12-31T05:00:00"), kst("2027-01-01T04:30:00")),
])
def test_the_next_daily_run_is_the_next_korea_wall_clock_slot(
    now: datetime, due: datetime,
) -> None:
    at = parse_daily_at("04:30")
    assert at is not None
    assert next_daily_run(now, at) == due
    assert next_daily_run(now, at).utcoffset() == timedelta(hours=9)


def test_a_slot_reconciles_the_korea_day_before_it() -> None:
    assert day_to_reconcile(kst("2026-11-26T04:30:00")) == date(2026, 11, 25)
    assert day_to_reconcile(kst("2027-01-01T00:10:00")) == date(2026, 12, 31)
    assert parse_daily_at("off") is None
    with pytest.raises(ValueError, match="aware"):
        next_daily_run(datetime(2026, 11, 26, 4, 0), time(4, 30))


def test_reconcile_daily_at_is_checked_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, normal in (("04:30", "04:30"), ("4:30", "04:30"), ("off", "off"), ("", "off"),
                        ("OFF", "off"), ("23:59", "23:59")):
        monkeypatch.setenv("RECONCILE_DAILY_AT", raw)
        assert load_settings().reconcile_daily_at == normal
    for bad in ("24:00", "4:5", "0430", "noon", "12:60"):
        monkeypatch.setenv("RECONCILE_DAILY_AT", bad)
        with pytest.raises(ConfigError, match="RECONCILE_DAILY_AT"):
            load_settings()
    monkeypatch.delenv("RECONCILE_DAILY_AT")
    assert load_settings().reconcile_daily_at == "04:30"


async def test_the_schedule_reconciles_yesterday_at_its_slot_once(
    gw: SimGateway, engine: AsyncEngine, day: date,
) -> None:
    order = await paid(gw, lost=True)
    gateway = gateway_of(gw)
    slot = datetime.combine(day + timedelta(days=1), time(4, 30), tzinfo=KST)
    clock = iter([slot - timedelta(seconds=1)])  # first look: just before the slot

    def now() -> datetime:
        return next(clock, slot + timedelta(seconds=1))

    stop = asyncio.Event()
    task = asyncio.create_task(run_daily(gateway, stop, time(4, 30), now=now))
    for _ in range(200):
        if await scalar(engine, "SELECT count(*) FROM reconciliation_runs"):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=10)

    async with gateway.sessionmaker() as session:
        [run] = await ReconciliationRepository(session).runs()
    assert run.date == day.isoformat() and run.status == "completed"
    assert run.report["actor"] == "reconcile" and run.fixed == 1
    assert (await gw.order(order["order_no"]))["status"] == "paid"
    # Another replica's slot (or a restart) finds the completed run and skips it.
    assert await run_scheduled(gateway, day) is None
    both = await asyncio.gather(run_scheduled(gateway, day - timedelta(days=1)),
                                run_scheduled(gateway, day - timedelta(days=1)))
    assert sorted(run is None for run in both) == [False, True]
    assert await scalar(engine, "SELECT count(*) FROM reconciliation_runs") == 2


# ---- the report as a table ----------------------------------------------------------------


def test_the_table_lists_every_item_with_aligned_columns() -> None:
    detail = {
        "id": 7, "date": "2026-11-25", "status": "completed", "error": None,
        "counts": {"matched": 1, "fixed": 1, "needs_review": 1},
        "matched": [{"what": "payment", "order_no": "A1", "tid": "tpay_test-1",
                     "status": "paid", "why": "Payletter: approved; ours: paid", "new": True}],
        "fixed": [{"what": "lost_callback", "order_no": "LONGER-ORDER-2", "tid": "tpay_test-2",
                   "status": "paid", "why": "no callback", "new": True}],
        "needs_review": [{"what": "unknown_order", "order_no": None, "tid": "tpay_test-3",
                          "status": None, "why": "not ours", "new": False}],
    }
    lines = report_table(detail).splitlines()
    assert lines[0] == "Reconciliation #7 of 2026-11-25 (Korea time): completed"
    assert lines[1] == "matched 1, fixed 1, needs review 1"
    header, *rows = lines[3:]
    assert header.split() == ["RESULT", "WHAT", "ORDER_NO", "TID", "STATUS", "WHY"]
    assert [row.split()[0] for row in rows] == ["needs_review", "fixed", "matched"]
    assert "(known)" in rows[0] and " - " in rows[0]
    starts = {line.index(word) for line, word in zip([header, *rows],
                                                     ["TID", "tpay_test-3", "tpay_test-2",
                                                      "tpay_test-1"], strict=True)}
    assert len(starts) == 1  # one column


# ---- the CLI, against a simulator process ---------------------------------------------------


@pytest.fixture(scope="module")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from harness.processes import start_simulator

    process = start_simulator(tmp_path_factory.mktemp("sim-logs"))
    yield process
    process.stop()


async def test_the_cli_reconciles_a_date_and_prints_a_table_or_json(
    database_url: str, engine: AsyncEngine, sim_process: Any, day: date,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main
    from app.main import create_app
    from tests.support import make_settings, running

    async with httpx.AsyncClient(base_url=sim_process.url) as sim:
        await sim.post("/_sim/reset")
        noon = datetime.combine(day, time(12), tzinfo=KST)
        await sim.post("/_sim/clock", json={"now": noon.isoformat()})
        await sim.post("/_sim/faults", json={"drop_all_callbacks": True})
        service = create_app(make_settings(database_url,
                                           payletter_base_url=sim_process.url + "/",
                                           sync_sweeper=False))
        async with running(service), client_for(
                service, authorization="Bearer shop-token-for-tests") as shop:
            r = await shop.post("/orders", json={"pgcode": "creditcard", "amount": 2500,
                                                 "product_name": "cli", "user_id": "u1"})
            assert r.status_code == 201, r.text
            order_no, token = r.json()["order_no"], r.json()["token"]
            assert (await sim.post(f"/_sim/payments/{token}/approve")).status_code == 200

        monkeypatch.setenv("DATABASE_URL", database_url)
        monkeypatch.setenv("PAYLETTER_ENV", "sim")
        monkeypatch.setenv("PAYLETTER_BASE_URL", sim_process.url + "/")
        capsys.readouterr()

        code = await asyncio.to_thread(main, ["reconcile", "--date", day.isoformat(), "--json"])
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report
        assert report["status"] == "completed" and report["date"] == day.isoformat()
        assert [(i["order_no"], i["what"]) for i in report["fixed"]] == [
            (order_no, "lost_callback")]
        assert report["audit"][0]["actor"] == "cli"
        assert await scalar(engine, "SELECT status FROM orders") == "paid"

        code = await asyncio.to_thread(main, ["reconcile", "--date", day.isoformat()])
        lines = capsys.readouterr().out.splitlines()
        assert code == 0
        assert lines[0] == (f"Reconciliation #{report['id'] + 1} of {day.isoformat()} "
                            "(Korea time): completed")
        assert lines[1] == "matched 1, fixed 0, needs review 0"
        assert lines[3].split() == ["RESULT", "WHAT", "ORDER_NO", "TID", "STATUS", "WHY"]
        assert lines[4].split()[:3] == ["matched", "payment", order_no]

        await sim.post("/_sim/faults", json={"api_errors": {"payments/transaction/list": {
            "status": 401, "code": 998, "message": "Unauthorized"}}})
        code = await asyncio.to_thread(main, ["reconcile", "--date", day.isoformat()])
        out = capsys.readouterr().out
        assert code == 1 and ": failed" in out.splitlines()[0] and "HTTP 401" in out
        await sim.post("/_sim/reset")

    with pytest.raises(SystemExit) as exc:
        main(["reconcile", "--date", "25/11/2026"])
    assert exc.value.code == 2
    assert "is not a date as YYYY-MM-DD" in capsys.readouterr().err
