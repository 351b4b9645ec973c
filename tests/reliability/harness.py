"""Shared pieces of the reliability scenarios (storm, database outage, crash).

Sizes come from `RELIABILITY_SCALE`: unset (or `bounded`) is the small form `make test`
runs; `full` is the form `make soak` runs. Every scenario writes its figures to
`test-artifacts/reliability/<scale>/<scenario>.json`; `python -m tests.reliability.report`
turns them into docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.postgres import (
    PostgresServer,
    free_port,
    run_migrations,
    server_options,
    start_cluster,
)
from harness.processes import ROOT, SHOP_TOKEN, Process, start, start_service
from tests.factories import order_body

SCALE_ENV = "RELIABILITY_SCALE"
ARTIFACTS = ROOT / "test-artifacts" / "reliability"


@dataclass(frozen=True)
class Scale:
    name: str
    # Storm: orders × (callbacks + returns) deliveries, against two service processes.
    storm_orders: int
    storm_callbacks: int  # per order: the one Payletter sends on approval + concurrent copies
    storm_returns: int  # per order: the browser's return, posted to both services in turn
    storm_orders_in_flight: int  # orders stormed at once (× 20 deliveries in flight)
    # Database outage: a stream of approvals, PostgreSQL stopped in the middle of it.
    outage_seconds: float
    outage_orders: int
    outage_lead_seconds: float  # stream before the stop (and after the start again)
    outage_interval: float  # the simulator's redelivery interval
    # Crash: SIGKILL the service mid-stream, restart it after `crash_down_seconds`.
    crash_orders: int
    crash_stream_seconds: float
    crash_down_seconds: float
    crash_interval: float
    crash_copies: int  # concurrent copies of each callback (more requests in flight at the kill)


BOUNDED = Scale(
    name="bounded",
    storm_orders=60, storm_callbacks=12, storm_returns=8, storm_orders_in_flight=3,
    outage_seconds=4.0, outage_orders=48, outage_lead_seconds=1.0, outage_interval=0.5,
    crash_orders=60, crash_stream_seconds=3.0, crash_down_seconds=1.0, crash_interval=0.5,
    crash_copies=2,
)
FULL = Scale(
    name="full",
    storm_orders=1000, storm_callbacks=12, storm_returns=8, storm_orders_in_flight=3,
    outage_seconds=30.0, outage_orders=400, outage_lead_seconds=5.0, outage_interval=3.0,
    crash_orders=400, crash_stream_seconds=10.0, crash_down_seconds=5.0, crash_interval=1.0,
    crash_copies=2,
)


def current_scale() -> Scale:
    name = os.environ.get(SCALE_ENV, "bounded").strip().lower() or "bounded"
    if name not in ("bounded", "full"):
        raise ValueError(f"{SCALE_ENV} must be 'bounded' or 'full', not {name!r}")
    return FULL if name == "full" else BOUNDED


def log_dir(scenario: str) -> Path:
    path = ARTIFACTS / "logs" / scenario
    path.mkdir(parents=True, exist_ok=True)
    return path


# ---- processes --------------------------------------------------------------------------


def start_simulator(logs: Path, *, interval: float, max_attempts: int = 20,
                    timeout: float = 5.0) -> Process:
    port = free_port()
    args = ["-m", "simulator", "--host", "127.0.0.1", "--port", str(port),
            "--callback-interval", str(interval), "--callback-max-attempts", str(max_attempts),
            "--callback-timeout", str(timeout), "--log-level", "warning"]
    return start("simulator", args, port=port, health="/_sim/health", env={}, log_dir=logs)


def start_gateway(logs: Path, name: str, *, database_url: str, simulator_url: str,
                  port: int | None = None) -> Process:
    """The service with JSON logs, and only redeliveries to apply what was lost: no status
    sweeper, no daily reconciliation."""
    return start_service(logs, database_url=database_url, simulator_url=simulator_url,
                         name=name, port=port, extra_env={
                             "LOG_FORMAT": "json", "SYNC_SWEEPER": "false",
                             "RECONCILE_DAILY_AT": "off"})


async def stop_all(processes: Iterable[Process]) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes))


# ---- a PostgreSQL of the test's own ------------------------------------------------------


@dataclass
class PrivateCluster:
    """A throwaway cluster (harness/postgres.py `start_cluster`) that only this test uses, so
    it may stop and start it, and its connection limit and log are nobody else's."""

    server: PostgresServer
    url: str  # a migrated database on it, SQLAlchemy asyncpg URL

    @property
    def data(self) -> str:
        assert self.server.cluster_dir is not None
        return self.server.cluster_dir

    @property
    def port(self) -> int:
        return int(self.server.admin_dsn.rsplit(":", 1)[1].split("/", 1)[0])

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        assert self.server.pg_ctl is not None
        done = subprocess.run([*self.server.runner, self.server.pg_ctl, "-D", self.data, *args],
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"pg_ctl {args}: {done.stdout}{done.stderr}"

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, new ones refused; waits until down."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start it again, exactly as start_cluster did (same port, socket folder, options)."""
        folder = os.path.dirname(self.data)
        self._pg_ctl("-l", f"{folder}/log", "-w", "-o", server_options(self.port, folder),
                     "start")

    def close(self) -> None:
        self.server.created.clear()  # the whole cluster goes: no need to drop its database
        self.server.close()


@contextlib.asynccontextmanager
async def private_cluster() -> AsyncIterator[PrivateCluster]:
    server = await asyncio.to_thread(start_cluster)
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but PostgreSQL's server binaries (initdb, pg_ctl) are missing")
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl) for a cluster of its own")
    try:
        url = await asyncio.to_thread(server.create_database, "reliability")
        await asyncio.to_thread(run_migrations, url)
        yield PrivateCluster(server, url)
    finally:
        await asyncio.to_thread(PrivateCluster(server, "").close)


# ---- driving ----------------------------------------------------------------------------


async def create_orders(services: list[Process], order_nos: list[str], *,
                        concurrency: int = 16) -> dict[str, dict[str, Any]]:
    """Create each order through services[i % len(services)]: its callback_url is that one's."""
    gate = asyncio.Semaphore(concurrency)
    created: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {SHOP_TOKEN}"},
                                 timeout=30) as shop:
        async def one(i: int, order_no: str) -> None:
            async with gate:
                url = services[i % len(services)].url + "/orders"
                r = await shop.post(url, json=order_body(order_no=order_no))
                assert r.status_code == 201, r.text
                created[order_no] = r.json()

        await asyncio.gather(*(one(i, no) for i, no in enumerate(order_nos)))
    return created


async def wait_until(what: str, check: Callable[[], Awaitable[bool]], *, timeout: float,
                     every: float = 0.25) -> float:
    """Poll `check` until true; the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)
    return time.monotonic() - started


@dataclass
class Deadlines:
    """Waits that, when they time out, are noted instead of raised at once: the scenario
    still collects and writes its figures, and `check` fails it afterwards."""

    missed: list[str] = field(default_factory=list)

    async def wait(self, what: str, check: Callable[[], Awaitable[bool]], *, timeout: float,
                   every: float = 0.25) -> float:
        try:
            return await wait_until(what, check, timeout=timeout, every=every)
        except AssertionError as exc:
            self.missed.append(str(exc))
            return timeout


async def callback_log(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await sim.get("/_sim/callbacks", timeout=60)
    assert r.status_code == 200, r.text
    attempts: list[dict[str, Any]] = r.json()
    return attempts


def delivery_endings(attempts: list[dict[str, Any]]) -> Counter[str]:
    """How each callback delivery ended (its last attempt's outcome), and its attempts."""
    last: dict[int, dict[str, Any]] = {}
    for attempt in attempts:
        last[attempt["delivery_id"]] = attempt
    return Counter(f"{a['outcome']} after {a['attempt']}" if a["attempt"] > 1 else a["outcome"]
                   for a in last.values())


def settled(attempts: list[dict[str, Any]], expected_deliveries: int,
            max_attempts: int = 20) -> bool:
    """Every callback delivery ended: acknowledged, or out of attempts."""
    last: dict[int, dict[str, Any]] = {}
    for attempt in attempts:
        last[attempt["delivery_id"]] = attempt
    return len(last) >= expected_deliveries and all(
        a["outcome"] == "acknowledged" or a["attempt"] >= max_attempts for a in last.values())


# ---- what the database says -------------------------------------------------------------


@dataclass
class Ledger:
    orders: int = 0
    paid: int = 0
    applications: int = 0  # transitions to paid
    double_applied: int = 0  # orders with more than one transition to paid / applied delivery
    lost: int = 0  # orders never paid
    wrong_tid: int = 0  # paid with a tid Payletter didn't give this order
    deliveries: Counter[str] = field(default_factory=Counter)  # "kind/outcome" → count
    paid_orders: set[str] = field(default_factory=set)

    @property
    def recorded(self) -> int:
        return sum(self.deliveries.values())


async def ledger(engine: AsyncEngine, prefix: str,
                 tids: dict[str, str] | None = None) -> Ledger:
    """Orders whose order_no starts with `prefix`: what was applied, how often, and the
    deliveries on record. `tids`: order_no → the tid Payletter gave it."""
    result = Ledger()
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT o.order_no, o.status, o.tid,"
            " (SELECT count(*) FROM order_transitions t"
            "   WHERE t.order_id = o.id AND t.to_status = 'paid') AS to_paid,"
            " (SELECT count(*) FROM deliveries d"
            "   WHERE d.order_id = o.id AND d.outcome = 'applied') AS applied"
            " FROM orders o WHERE o.order_no LIKE :prefix"), {"prefix": prefix + "%"})).all()
        for order_no, status, tid, to_paid, applied in rows:
            result.orders += 1
            result.applications += to_paid
            if to_paid > 1 or applied > 1:
                result.double_applied += 1
            if status == "paid":
                result.paid += 1
                result.paid_orders.add(order_no)
                if tids is not None and tids.get(order_no) != tid:
                    result.wrong_tid += 1
            else:
                result.lost += 1
        for kind, outcome, count in (await conn.execute(text(
            "SELECT kind, outcome, count(*) FROM deliveries WHERE order_no LIKE :prefix"
            " GROUP BY kind, outcome"), {"prefix": prefix + "%"})).all():
            result.deliveries[f"{kind}/{outcome}"] = count
    return result


async def postgres_version(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        version = (await conn.execute(text("SHOW server_version"))).scalar()
    return str(version)


class ServerLog:
    """PostgreSQL's own log (only for a cluster the tests started): the errors it wrote
    from now on, with their DETAIL/STATEMENT lines."""

    def __init__(self, server: PostgresServer | None) -> None:
        self.path = (Path(server.cluster_dir).parent / "log"
                     if server is not None and server.cluster_dir else None)
        self.offset = self.path.stat().st_size if self.path and self.path.exists() else 0

    def errors(self) -> list[str]:
        if self.path is None or not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            lines = handle.read().decode(errors="replace").splitlines()
        found: list[str] = []
        in_error = False
        for line in lines:
            if any(f"{level}:  " in line for level in ("ERROR", "FATAL", "PANIC")):
                in_error = True
            elif not any(f"{part}:  " in line for part in ("DETAIL", "STATEMENT", "HINT",
                                                           "CONTEXT")):
                in_error = False  # an error's DETAIL/STATEMENT/... lines follow it
            if in_error:
                found.append(line)
        return found


# ---- what the processes logged ----------------------------------------------------------


@dataclass
class LogScan:
    statuses: Counter[str] = field(default_factory=Counter)  # "path status" → count
    unexpected: int = 0  # "unexpected error" (the catch-all handler) or a traceback
    errors: int = 0  # error-level lines
    unparsed: int = 0

    def status_count(self, status: int) -> int:
        return sum(n for key, n in self.statuses.items() if key.endswith(f" {status}"))

    def merge(self, other: LogScan) -> LogScan:
        return LogScan(self.statuses + other.statuses, self.unexpected + other.unexpected,
                       self.errors + other.errors, self.unparsed + other.unparsed)


def scan_log(process: Process) -> LogScan:
    """Count access-line statuses and errors in a service's JSON log."""
    scan = LogScan()
    for line in process.output().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            scan.unparsed += 1
            if "Traceback" in line:
                scan.unexpected += 1
            continue
        if not isinstance(record, dict):
            scan.unparsed += 1
            continue
        if record.get("logger") == "app.access":
            scan.statuses[f"{record.get('path')} {record.get('status')}"] += 1
        if record.get("level") in ("error", "critical"):
            scan.errors += 1
        # The catch-all handler's line, or any other line carrying a traceback.
        if str(record.get("message", "")).startswith("unexpected error") or record.get(
                "exception"):
            scan.unexpected += 1
    return scan


# ---- figures ----------------------------------------------------------------------------


@dataclass
class Figures:
    """What a scenario measured; written as JSON for the report, before its asserts."""

    scenario: str
    title: str
    scale: str
    counts: dict[str, int]  # the required five first, then the scenario's own
    parameters: dict[str, Any]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)  # waits that timed out
    passed: bool = False

    measured_at: str = ""

    def write(self) -> Path:
        self.measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        self.machine = {"cores": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(),
                        "load_average_1m": round(os.getloadavg()[0], 1), **self.machine}
        path = ARTIFACTS / self.scale / f"{self.scenario}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")
        return path


REQUIRED_COUNTS = ("deliveries_sent", "applications", "lost", "double_applied", "http_500")


def required_counts(*, sent: int, answered_500: int, book: Ledger, scan: LogScan
                    ) -> dict[str, int]:
    """The counts every scenario reports (REQUIRED_COUNTS): a 500 is one the callers saw,
    one in the services' access lines, or an unexpected error in their logs."""
    return {"deliveries_sent": sent, "applications": book.applications, "lost": book.lost,
            "double_applied": book.double_applied,
            "http_500": answered_500 + scan.status_count(500) + scan.unexpected}


def check(figures: Figures, expected_applications: int) -> None:
    """Write the figures, then hold them to the guarantees."""
    counts = figures.counts
    figures.passed = (counts["applications"] == expected_applications and counts["lost"] == 0
                      and counts["double_applied"] == 0 and counts["http_500"] == 0
                      and not figures.missed)
    figures.write()
    assert not figures.missed, figures.missed
    assert counts["lost"] == 0, counts
    assert counts["double_applied"] == 0, counts
    assert counts["http_500"] == 0, counts
    assert counts["applications"] == expected_applications, counts
