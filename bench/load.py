"""Callback and order-creation load: our service against a minimal receiver and a bare endpoint.

    make bench      (or: python -m bench.load [--duration 15] [--warmup 3] [--connections 50])

One run on one machine, everything on loopback, on a PostgreSQL cluster started for the
run (durable: fsync on), or with --postgres find the one `harness.postgres` finds:

- (a) the service (`app.main:app`), (b) `bench.minimal` (parse the JSON, one
  `INSERT … ON CONFLICT DO NOTHING` with raw asyncpg), (c) `bench.bare` (acknowledge, no
  database); the same uvicorn command line for all three: one worker, --no-proxy-headers,
  --log-level warning, --no-access-log. The service runs with LOG_LEVEL=WARNING (its own
  access line is INFO), no sweeper, no daily reconciliation, no webhook dispatcher; the
  outbox write stays (it is part of the callback's transaction).
- Each is driven from a separate process, wrk (`bench/bodies.lua`; installed from Debian's
  packages when missing and root) or `bench.loadgen`, with `--connections` connections for
  `--warmup` + `--duration` seconds per scenario: first deliveries of unique payments
  (pre-seeded pending orders, bodies with the pay_test payhash), redeliveries of the
  payments each target applied, order creation against the simulator.
- Per run: requests/s, p50/p99 latency, peak RSS (VmHWM, reset before each run), CPU ms
  per request of the server process and of its PostgreSQL backends; afterwards the
  database is checked (every first delivery applied exactly once, with its outbox event;
  every redelivery a duplicate).
- Order-creation overhead: the same requests at one connection against the service and
  straight against the simulator's payments/request; overhead = the difference of the p50s.
- When a target is missed (or with --profile always), the service is profiled under the
  first-delivery load with py-spy; the folded stacks and a flame graph go to var/bench/.

The results replace the part of docs/benchmarks.md between its `bench:results` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.minimal import PAYMENT_KEY, SCHEMA, window_request
from harness.postgres import (
    PostgresServer,
    execute,
    find_postgres,
    free_port,
    run_migrations,
    start_cluster,
)
from harness.processes import Process, start, start_simulator

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "bodies.lua"
SHOP = "bench-shop-token"
OPS = "bench-ops-token"
ORDER_BODY = {"pgcode": "creditcard", "amount": 15000, "product_name": "Coffee beans",
              "user_id": "buyer42"}
BEGIN, END = "<!-- bench:results -->", "<!-- /bench:results -->"
# The same uvicorn command line for (a), (b) and (c).
UVICORN = ["--host", "127.0.0.1", "--workers", "1", "--no-proxy-headers",
           "--log-level", "warning", "--no-access-log"]
TARGETS = {
    "ours": ("(a) service", "app.main:app"),
    "ours2": ("(a2) service, 2 workers", "app.main:app"),
    "minimal": ("(b) minimal receiver", "bench.minimal:app"),
    "bare": ("(c) bare FastAPI", "bench.bare:app"),
}
SERVICES = ("ours", "ours2")  # the service, each with a database of its own
SCENARIOS = {
    "first": "first deliveries (unique payments)",
    "redelivery": "redeliveries (already applied)",
    "orders": "order creation (POST /orders → simulator)",
}


# ---- the payments: seeded orders and their callback bodies ---------------------------


def payment(n: int) -> tuple[str, str, int, str]:
    """order_no, user_id, amount, tid of bench payment n (the SQL in `seed` agrees)."""
    return f"BENCH{n:09d}", f"buyer{n % 5000}", 1000 + (n % 90) * 100, f"tpay_test-2026{n:011d}"


def callback_body(n: int) -> str:
    """A callback as Payletter sends it (the vendor's sample shape), payhash and all."""
    order_no, user_id, amount, tid = payment(n)
    payhash = hashlib.sha256(f"{user_id}{amount}{tid}{PAYMENT_KEY}".encode()).hexdigest()
    return json.dumps({
        "user_id": user_id, "user_name": "홍길동", "amount": amount,
        "tax_amount": amount // 11, "taxfree_amount": 0, "tid": tid,
        "cid": f"2026112610{n:010d}", "order_no": order_no, "service_name": "",
        "product_name": "원두 1kg", "custom_parameter": "", "transaction_date":
        "2026-11-26 10:58:35", "pay_info": "신한카드", "pgcode": "creditcard",
        "domestic_flag": "Y", "billkey": "", "card_info": "457973******1234",
        "payhash": payhash.upper(), "disposable_cup_deposit": 0,
        "cash_receipt": {"code": "", "message": "", "cid": "", "deal_no": "",
                         "issue_type": "", "payer_sid": "", "type": ""},
    }, ensure_ascii=False, separators=(",", ":"))


def write_bodies(path: Path, numbers: Iterator[int] | range | list[int]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for n in numbers:
            handle.write(callback_body(n) + "\n")
    return path


async def seed(dsn: str, first: int, count: int) -> None:
    """`count` pending orders, payments first … first+count-1."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""
            INSERT INTO orders (order_no, client_id, pgcode, status, amount, taxfree_amount,
                tax_amount, cancelled_amount, product_name, user_id, request_options,
                payment_details, token, created_at, updated_at)
            SELECT 'BENCH' || lpad(n::text, 9, '0'), 'pay_test', 'creditcard', 'pending',
                1000 + (n % 90) * 100, 0, (1000 + (n % 90) * 100) / 11, 0, '원두 1kg',
                'buyer' || (n % 5000), '{}', '{}', (1000000000 + n)::text, now(), now()
            FROM generate_series($1::bigint, $2::bigint) AS n
        """, first, first + count - 1)
        await conn.execute("ANALYZE orders")
    finally:
        await conn.close()


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


# ---- processes: the servers, their memory and CPU ------------------------------------


def start_server(key: str, env: dict[str, str], log_dir: Path) -> Process:
    port = free_port()
    if key == "ours2":  # as the image runs it: `serve`, WEB_CONCURRENCY workers
        return start(key, ["-m", "app.cli", "serve", "--host", "127.0.0.1", "--port",
                           str(port), "--log-level", "warning"], port=port, health="/healthz",
                     # The connection budget of (a) and (b), shared by the two workers.
                     env={**env, "WEB_CONCURRENCY": "2", "DATABASE_POOL_SIZE": "15",
                          "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}, log_dir=log_dir)
    env = {**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"} if key == "ours" else env
    return start(key, ["-m", "uvicorn", TARGETS[key][1], "--port", str(port), *UVICORN],
                 port=port, health="/healthz", env=env, log_dir=log_dir)


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def reset_peak_rss(pid: int) -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0)."""
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float:
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text(),
                              re.M)
            total += int(match.group(1)) if match else 0
    return total / 1024


def task_cpu(pid: int) -> float:
    """CPU seconds of a process, all its threads, in nanoseconds' precision where the
    kernel keeps scheduler statistics (`schedstat`), else in clock ticks (`stat`)."""
    total = 0.0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0]) / 1e9
        return total
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += task_cpu(p)
    return total


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving `database` (by process title)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {database} " in title:
                found[int(entry.name)] = task_cpu(int(entry.name))
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, float(sum(values))


# ---- the load generator ---------------------------------------------------------------


def ensure_wrk() -> str | None:
    """wrk from PATH; as root on Debian, installed from Debian's packages when missing."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("installing wrk (apt-get install -y wrk) …", flush=True)

    def apt(*words: str) -> int:
        return subprocess.run(["apt-get", *words], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False).returncode

    if apt("install", "-y", "-qq", "wrk") != 0:  # an old or empty package list: update once
        apt("update", "-qq")
        apt("install", "-y", "-qq", "wrk")
    return shutil.which("wrk")


@dataclass
class Load:
    wrk: str | None
    connections: int
    threads: int

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "bench.loadgen (Python)"

    def drive(self, url: str, bodies: Path, mode: str, seconds: float, *,
              connections: int | None = None, header: str | None = None) -> dict[str, Any]:
        conns = connections or self.connections
        if self.wrk:
            threads = max(1, min(self.threads, conns))
            cmd = [self.wrk, "-t", str(threads), "-c", str(conns), "-d",
                   f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(LUA), url,
                   "--", str(bodies), mode, str(threads), *([header] if header else [])]
        else:
            cmd = [sys.executable, "-m", "bench.loadgen", url, "--bodies", str(bodies),
                   "--mode", mode, "--connections", str(conns), "--duration", str(seconds),
                   *(["--header", header] if header else [])]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              timeout=seconds + 120, check=False)
        for line in done.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                result: dict[str, Any] = json.loads(line[len("BENCH_JSON "):])
                return result
        raise RuntimeError(f"load generator failed ({done.returncode}):\n{done.stdout}\n"
                           f"{done.stderr}")


# ---- one measured run -----------------------------------------------------------------


@dataclass
class Run:
    scenario: str
    target: str
    result: dict[str, Any]
    rss_mb: float
    cpu_s: float
    machine_busy: float  # share of all cores busy during the measured run
    db_cpu_s: float | None = None  # PostgreSQL backends serving this target
    checks: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return rate(self.result)

    @property
    def p50(self) -> float:
        return float(self.result["p50_us"]) / 1000

    @property
    def p99(self) -> float:
        return float(self.result["p99_us"]) / 1000

    @property
    def errors(self) -> int:
        return sum(int(v) for v in self.result["errors"].values())

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_s / max(1, int(self.result["requests"]))

    @property
    def db_ms_per_request(self) -> str:
        if self.db_cpu_s is None:
            return "–"
        return f"{1000 * self.db_cpu_s / max(1, int(self.result['requests'])):.2f}"


def rate(result: dict[str, Any]) -> float:
    return float(result["requests"]) / (float(result["duration_us"]) / 1e6)


def measure(load: Load, process: Process, scenario: str, target: str, url: str,
            warmup_bodies: Path, bodies: Path, mode: str, args: argparse.Namespace,
            header: str | None = None, database: str | None = None) -> Run:
    pid = process.popen.pid
    reset_peak_rss(pid)
    if args.warmup > 0:
        load.drive(url, warmup_bodies, "cycle" if mode == "cycle" else "unique", args.warmup,
                   header=header)
    db_before = backend_cpu(database) if database else {}
    cpu_before, (busy_before, total_before) = cpu_seconds(pid), machine_busy()
    result = load.drive(url, bodies, mode, args.duration, header=header)
    busy_after, total_after = machine_busy()
    cpu = cpu_seconds(pid) - cpu_before
    db_cpu = None
    if database:
        db_after = backend_cpu(database)
        db_cpu = sum(after - db_before.get(p, 0.0) for p, after in db_after.items())
    run = Run(scenario, target, result, peak_rss_mb(pid), cpu,
              (busy_after - busy_before) / max(1.0, total_after - total_before), db_cpu)
    if mode == "unique" and result["wrapped"]:
        run.checks.append(f"FAILED: bodies ran out ({result['wrapped']} start-overs); "
                          "raise --bodies")
    print(f"  {SCENARIOS[scenario][:28]:28s} {TARGETS[target][0]:22s} {run.rps:8.0f} req/s  "
          f"p50 {run.p50:7.1f} ms  p99 {run.p99:7.1f} ms  peak RSS {run.rss_mb:6.1f} MB  "
          f"CPU {run.cpu_ms_per_request:5.2f} ms/req (PostgreSQL {run.db_ms_per_request})  "
          f"errors {run.errors}", flush=True)
    return run


# ---- the benchmark --------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    load: Load
    work: Path
    dsns: dict[str, str]  # each target's database (ours, ours2, minimal)
    servers: dict[str, Process]
    simulator: Process
    runs: list[Run] = field(default_factory=list)
    sequential: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    def url(self, target: str, path: str) -> str:
        return self.servers[target].url + path

    def database(self, target: str) -> str | None:
        dsn = self.dsns.get(target)
        return dsn.rsplit("/", 1)[1] if dsn else None

    def first_deliveries(self) -> None:
        a = self.args
        warm = write_bodies(self.work / "first-warmup.jsonl", range(1, a.warmup_bodies + 1))
        main = write_bodies(self.work / "first.jsonl",
                            range(a.warmup_bodies + 1, a.warmup_bodies + a.bodies + 1))
        for target in self.servers:
            mode = "cycle" if target == "bare" else "unique"
            run = measure(self.load, self.servers[target], "first", target,
                          self.url(target, "/payletter/callback"), warm, main, mode, a,
                          database=self.database(target))
            self.runs.append(run)
        self.check_first()

    def check_first(self) -> None:
        for target in SERVICES:
            dsn = self.dsns[target]
            outcomes = dict(asyncio.run(fetch(dsn, "SELECT outcome, count(*) FROM "
                                              "deliveries GROUP BY outcome")))
            paid = asyncio.run(fetch(dsn, "SELECT count(*) FROM orders WHERE "
                                     "status = 'paid'"))[0][0]
            events = asyncio.run(fetch(dsn, "SELECT count(*) FROM outbox_events "
                                       "WHERE type = 'order.paid'"))[0][0]
            applied = outcomes.pop("applied", 0)
            ok = applied == paid == events and not outcomes
            run = next(r for r in self.runs if r.scenario == "first" and r.target == target)
            run.checks.append(
                f"{'ok' if ok else 'FAILED'}: {TARGETS[target][0]}: {applied} callbacks "
                f"applied (warm-up included), {paid} orders paid, {events} order.paid "
                "outbox events" + (f", other outcomes {outcomes}" if outcomes else ""))
        stored = asyncio.run(fetch(self.dsns["minimal"],
                                   "SELECT count(*) FROM bench_callbacks"))
        minimal = next(r for r in self.runs if r.scenario == "first" and r.target == "minimal")
        minimal.checks.append(f"(b): {stored[0][0]} rows stored (warm-up included)")

    def redeliveries(self) -> None:
        a = self.args
        paid_orders = "SELECT order_no FROM orders WHERE status = 'paid' ORDER BY random()"
        applied = {target: asyncio.run(fetch(self.dsns[target], paid_orders))
                   for target in SERVICES}
        applied["minimal"] = asyncio.run(fetch(self.dsns["minimal"], "SELECT order_no FROM "
                                               "bench_callbacks ORDER BY random()"))
        applied["bare"] = applied["ours"]
        outcomes = "SELECT outcome, count(*) FROM deliveries GROUP BY outcome"
        before = {target: dict(asyncio.run(fetch(self.dsns[target], outcomes)))
                  for target in SERVICES}
        for target in self.servers:
            numbers = [int(row[0][len("BENCH"):]) for row in applied[target]]
            bodies = write_bodies(self.work / f"redeliver-{target}.jsonl", numbers)
            run = measure(self.load, self.servers[target], "redelivery", target,
                          self.url(target, "/payletter/callback"), bodies, bodies, "cycle", a,
                          database=self.database(target))
            self.runs.append(run)
        for target in SERVICES:
            after = dict(asyncio.run(fetch(self.dsns[target], outcomes)))
            new = {k: after.get(k, 0) - before[target].get(k, 0) for k in after}
            duplicates = new.pop("duplicate", 0)
            paid = asyncio.run(fetch(self.dsns[target], "SELECT count(*) FROM orders WHERE "
                                     "status = 'paid'"))[0][0]
            ok = not any(new.values()) and paid == before[target].get("applied", 0)
            run = next(r for r in self.runs
                       if r.scenario == "redelivery" and r.target == target)
            run.checks.append(
                f"{'ok' if ok else 'FAILED'}: {TARGETS[target][0]}: {duplicates} "
                "redeliveries recorded as duplicates (warm-up included), no order changed"
                + (f", other outcomes {new}" if any(new.values()) else ""))

    def orders(self) -> None:
        a = self.args
        body = self.work / "order.jsonl"
        body.write_text(json.dumps(ORDER_BODY) + "\n")
        sim_body = self.work / "payments-request.jsonl"
        sim_body.write_text(json.dumps(window_request(ORDER_BODY, "BENCHSIM0001",
                                                      "http://127.0.0.1:9")) + "\n")
        sim_url = self.simulator.url + "/v1.0/payments/request"
        sim_auth = f"Authorization: PLKEY {PAYMENT_KEY}"
        for target in self.servers:
            self.reset_simulator()
            header = f"Authorization: Bearer {SHOP}" if target in SERVICES else None
            run = measure(self.load, self.servers[target], "orders", target,
                          self.url(target, "/orders"), body, body, "cycle", a, header=header,
                          database=self.database(target))
            self.runs.append(run)
        for target in SERVICES:
            pending = asyncio.run(fetch(self.dsns[target], "SELECT count(*) FROM orders "
                                        "WHERE order_no LIKE 'PL%' AND status = 'pending'"))
            run = next(r for r in self.runs if r.scenario == "orders" and r.target == target)
            run.checks.append(f"{TARGETS[target][0]}: {pending[0][0]} orders pending with a "
                              "payment window (warm-up included)")
        # The simulator's own time, straight from the load generator, at the same load.
        self.reset_simulator()
        sim_load = self.load.drive(sim_url, sim_body, "cycle", a.duration, header=sim_auth)
        self.sequential["simulator (50 conns)"] = sim_load
        # Overhead: one connection, so no queueing; the same requests with and without us.
        for name, url, file, header in (
            ("simulator", sim_url, sim_body, sim_auth),
            ("ours", self.url("ours", "/orders"), body, f"Authorization: Bearer {SHOP}"),
            ("minimal", self.url("minimal", "/orders"), body, None),
            ("bare", self.url("bare", "/orders"), body, None),
        ):
            self.reset_simulator()
            self.load.drive(url, file, "cycle", 1, connections=1, header=header)
            pids = [self.simulator.popen.pid] + ([self.servers[name].popen.pid]
                                                 if name in self.servers else [])
            before = [cpu_seconds(pid) for pid in pids]
            result = self.load.drive(url, file, "cycle", a.sequential, connections=1,
                                     header=header)
            cpu = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
            # CPU per request: of the server (the simulator's own, for "simulator").
            result["cpu_ms"] = 1000 * cpu[-1] / max(1, result["requests"])
            self.sequential[name] = result
        print(f"  order creation at 1 connection: p50 ours "
              f"{self.sequential['ours']['p50_us'] / 1000:.2f} ms, simulator alone "
              f"{self.sequential['simulator']['p50_us'] / 1000:.2f} ms; CPU per order: ours "
              f"{self.sequential['ours']['cpu_ms']:.2f} ms, (c) "
              f"{self.sequential['bare']['cpu_ms']:.2f} ms, the simulator per "
              f"payments/request {self.sequential['simulator']['cpu_ms']:.2f} ms", flush=True)

    def reset_simulator(self) -> None:
        httpx.post(self.simulator.url + "/_sim/reset", timeout=10).raise_for_status()

    def profile_first_deliveries(self, seconds: float) -> None:
        """py-spy on the service under the first-delivery load: folded stacks + flame graph."""
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(pyspy).exists():  # into this virtualenv, from PyPI
            print("installing py-spy (pip install py-spy) …", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"],
                           check=False)
        if not Path(pyspy).exists():
            self.notes.append("py-spy could not be installed (`pip install py-spy`): "
                              "no profile")
            return
        ours = next(r for r in self.runs if r.scenario == "first" and r.target == "ours")
        total = 2 * seconds + 4
        count = math.ceil(ours.rps * total * 1.5) + 1000
        first = self.args.warmup_bodies + self.args.bodies + 1
        asyncio.run(seed(self.dsns["ours"], first, count))
        bodies = write_bodies(self.work / "profile.jsonl", range(first, first + count))
        out = Path(self.args.profile_dir)
        out.mkdir(parents=True, exist_ok=True)
        folded, svg = out / "profile.folded", out / "profile.svg"
        for stale in (folded, svg):
            stale.unlink(missing_ok=True)
        pid = str(self.servers["ours"].popen.pid)
        load = subprocess.Popen(  # the same load, in the background
            [sys.executable, "-c", "import sys, json; from bench.load import _drive_cli; "
             "_drive_cli()", json.dumps({
                 "wrk": self.load.wrk, "connections": self.load.connections,
                 "threads": self.load.threads, "url": self.url("ours", "/payletter/callback"),
                 "bodies": str(bodies), "seconds": total})],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = ""
        try:
            time.sleep(2)
            for fmt, path in (("raw", folded), ("flamegraph", svg)):
                spy = subprocess.run(
                    [pyspy, "record", "--pid", pid, "--duration", str(max(1, int(seconds))),
                     "--rate", "100", "--format", fmt, "--output", str(path)],
                    capture_output=True, text=True, check=False, timeout=seconds + 60)
                if spy.returncode != 0:  # e.g. no ptrace permission in a container
                    self.notes.append(f"py-spy failed ({spy.returncode}): "
                                      f"{spy.stderr.strip()[-300:]}")
                    break
            output, _ = load.communicate(timeout=total + 120)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        if not folded.exists():
            return
        result = next((json.loads(line[len("BENCH_JSON "):]) for line in output.splitlines()
                       if line.startswith("BENCH_JSON ")), None)
        self.profile = {"folded": folded, "svg": svg, "result": result,
                        "summary": summarize_profile(folded)}


def _drive_cli() -> None:
    """For the profile run: drive the load from a child process (argv[1] is JSON)."""
    spec = json.loads(sys.argv[1])
    load = Load(spec["wrk"], spec["connections"], spec["threads"])
    print("BENCH_JSON " + json.dumps(load.drive(spec["url"], Path(spec["bodies"]), "unique",
                                                spec["seconds"])), flush=True)


# ---- the profile, summarised ----------------------------------------------------------

# Where a frame's file lies → the part of the stack it stands for.
LAYERS = (
    ("app/", "app (our code)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("asyncpg/", "asyncpg"),
    ("pydantic", "pydantic"),
    ("starlette/", "Starlette"),
    ("fastapi/", "FastAPI"),
    ("uvicorn/", "uvicorn"),
    ("httptools", "uvicorn"),
    ("uvloop", "event loop"),
    ("asyncio/", "event loop"),
    ("logging/", "logging"),
    ("prometheus_client/", "prometheus_client"),
)
# Inclusive time of these steps of the callback path (function name, file fragment).
STEPS = (
    ("__call__", "app/observability.py", "the whole request, below uvicorn (middleware on)"),
    ("callback", "app/payments/endpoints.py", "POST /payletter/callback handler"),
    ("read_body", "app/payments/endpoints.py", "· read the body"),
    ("parse_fields", "app/kit/bodies.py", "· parse the JSON"),
    ("make_inbound", "app/payments/endpoints.py", "· the delivery as it arrived (digest)"),
    ("receive_signed_callback", "app/payments/service.py", "· the one-statement path"),
    ("parse_result", "app/payletter/results.py", "· · check the fields"),
    ("verify_payhash", "app/payletter/payhash.py", "· · payhash"),
    ("apply_signed_callback", "app/payments/repository.py",
     "· · the statement (lock, decide, write all)"),
    ("receive", "app/payments/service.py", "· the general path (ORM), when handed on"),
    ("observe_delivery", "app/metrics.py", "· metrics"),
)
# SQLAlchemy's ORM runs its synchronous part in a greenlet, which py-spy shows as a stack of
# its own, cut off from the request that started it: such stacks are labelled by their root.
GREENLET_ROOTS = (
    ("Session.flush", "ORM flush, synchronous part (unit of work, in a greenlet)"),
    ("Session.scalar", "ORM queries, synchronous part (compile, rows → objects)"),
    ("Session.execute", "ORM queries, synchronous part (compile, rows → objects)"),
    ("Session.get", "ORM queries, synchronous part (compile, rows → objects)"),
    ("Session.scalars", "ORM queries, synchronous part (compile, rows → objects)"),
    ("Session.commit", "ORM commit, synchronous part"),
    ("Session.close", "ORM close, synchronous part"),
)


def summarize_profile(folded: Path) -> dict[str, Any]:
    """Busy samples by layer (the innermost frame's) and by step of the callback path."""
    layers: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    functions: dict[str, int] = defaultdict(int)
    total = 0
    frame = re.compile(r"^(.*) \(([^:]*):?\d*\)$")
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame.match(f) for f in stack.split(";")]
        parsed = [(m.group(1), m.group(2)) if m else (f, "") for m, f in
                  zip(frames, stack.split(";"), strict=True)]
        name, path = parsed[-1]
        if path.endswith(("threading.py", "queue.py")) and name.endswith(("wait", "get")):
            continue  # an idle thread-pool worker waiting for work
        total += count
        layer = next((label for key, label in LAYERS if key in path), "other (stdlib, C)")
        layers[layer] += count
        functions[f"{name} ({short_path(path)})"] += count
        root = parsed[0][0]
        if "runpy" not in parsed[0][1] and "threading.py" not in parsed[0][1]:
            steps[next((label for prefix, label in GREENLET_ROOTS if root == prefix),
                       "other stacks of their own (greenlets)")] += count
            continue
        seen = set()
        for name, path in parsed:
            for step_name, fragment, label in STEPS:
                if (name == step_name or name.endswith("." + step_name)) and \
                        path.endswith(fragment) and label not in seen:
                    seen.add(label)
                    steps[label] += count
    labels = [label for _, _, label in STEPS] + list(dict.fromkeys(
        label for _, label in GREENLET_ROOTS)) + ["other stacks of their own (greenlets)"]
    return {"total": total, "layers": layers.most_common(),
            "steps": [(label, steps[label]) for label in labels if steps[label]],
            "self": sorted(functions.items(), key=lambda kv: -kv[1])[:12]}


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.replace(str(ROOT) + "/", "")


# ---- the report ------------------------------------------------------------------------


async def round_trips(dsn: str, n: int = 300) -> tuple[float, float]:
    """p50 ms of a round trip (SELECT 1) and of a committed one-row INSERT (a WAL flush)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (n int)")
        samples: dict[str, list[float]] = {"select": [], "commit": []}
        for i in range(n):
            for kind, sql in (("select", "SELECT 1"),
                              ("commit", "INSERT INTO bench_commit_probe VALUES (1)")):
                started = time.perf_counter()
                await conn.execute(sql) if kind == "commit" else await conn.fetchval(sql)
                if i >= 20:
                    samples[kind].append((time.perf_counter() - started) * 1000)
        await conn.execute("DROP TABLE bench_commit_probe")
        return (sorted(samples["select"])[len(samples["select"]) // 2],
                sorted(samples["commit"])[len(samples["commit"]) // 2])
    finally:
        await conn.close()


def own_cluster() -> PostgresServer | None:
    """A throwaway cluster for the benchmark alone, durable like production (unlike the
    tests' cluster, which runs with fsync=off): other work on a shared server (test suites
    creating and dropping databases) would otherwise show up in the commits' latency."""
    return start_cluster(durable=True, prefix="bench-pg-")


def postgres_facts(dsn: str) -> str:
    rows = asyncio.run(fetch(dsn, "SELECT current_setting('server_version'), "
                                  "current_setting('fsync'), "
                                  "current_setting('synchronous_commit')"))
    version, fsync, sync = rows[0]
    return f"PostgreSQL {version} (fsync={fsync}, synchronous_commit={sync})"


def report(bench: Bench, started: float, facts: dict[str, str]) -> str:
    runs = {(r.scenario, r.target): r for r in bench.runs}
    a = bench.args
    lines = [
        BEGIN,
        "",
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{(time.monotonic() - started) / 60:.1f} min: **{os.cpu_count()} cores**, "
        f"{platform.machine()}, {facts['memory']}, Python {platform.python_version()}, "
        f"{facts['postgres']} on {facts['server']}, load generator {bench.load.name} "
        f"({a.connections} connections, {bench.load.threads} threads), "
        f"{a.warmup:g} s warm-up + {a.duration:g} s per run; load average "
        f"{facts['loadavg']} when it started. Everything on this one machine: the load "
        f"generator, the server, PostgreSQL and the simulator share the cores. Before the "
        f"runs, {facts['round_trips']}.",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | peak RSS MB | server CPU ms/req | "
        "PostgreSQL CPU ms/req | all cores busy | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, label in SCENARIOS.items():
        for target in bench.servers:
            r = runs.get((scenario, target))
            if r is None:
                continue
            lines.append(
                f"| {label} | {TARGETS[target][0]} | {r.rps:,.0f} | {r.p50:.1f} | {r.p99:.1f} "
                f"| {r.rss_mb:.0f} | {r.cpu_ms_per_request:.2f} | {r.db_ms_per_request} "
                f"| {100 * r.machine_busy:.0f}% | {r.errors} |")
    lines += ["", "| scenario | service | ours/(b) req/s | ours/(c) req/s | ours/(b) p99 | "
              "ours/(c) p99 |", "|---|---|---:|---:|---:|---:|"]
    for scenario, label in SCENARIOS.items():
        b, c = runs.get((scenario, "minimal")), runs.get((scenario, "bare"))
        for target in SERVICES:
            ours = runs.get((scenario, target))
            if ours and b and c:
                lines.append(f"| {label} | {TARGETS[target][0]} | {ours.rps / b.rps:.2f}× "
                             f"| {ours.rps / c.rps:.2f}× | {ours.p99 / b.p99:.1f}× "
                             f"| {ours.p99 / c.p99:.1f}× |")
    seq = bench.sequential
    overhead = None
    if "ours" in seq and "simulator" in seq:
        overhead = (seq["ours"]["p50_us"] - seq["simulator"]["p50_us"]) / 1000
        lines += [
            "",
            f"Order creation at one connection ({a.sequential:g} s each, no queueing), p50 / "
            "p99 ms: " + ", ".join(
                f"{name} {seq[key]['p50_us'] / 1000:.2f} / {seq[key]['p99_us'] / 1000:.2f}"
                for key, name in (("simulator", "simulator's payments/request alone"),
                                  ("bare", "(c)"), ("minimal", "(b)"), ("ours", "(a)"))
                if key in seq) + f". The service commits twice per order (before and after "
            f"Payletter's call), so about 2 × {facts['commit_ms']} ms of its time is "
            "waiting for the disk here. CPU per order in these runs: " + ", ".join(
                f"{name} {seq[key]['cpu_ms']:.2f} ms" for key, name in (
                    ("bare", "(c)"), ("minimal", "(b)"), ("ours", "(a)"),
                    ("simulator", "the simulator per payments/request"))
                if key in seq and "cpu_ms" in seq[key]) + ".",
            f"The simulator alone at {a.connections} connections: "
            f"{rate(seq['simulator (50 conns)']):,.0f} req/s, "
            f"p50 {seq['simulator (50 conns)']['p50_us'] / 1000:.1f} ms, "
            f"p99 {seq['simulator (50 conns)']['p99_us'] / 1000:.1f} ms.",
        ]
    # Targets (issue 17), for the service at one worker like the baselines, and at two.
    checks: list[tuple[str, str, bool]] = []
    for target in SERVICES:
        name = TARGETS[target][0]
        for scenario, baseline, floor in (("first", "minimal", 0.5),
                                          ("redelivery", "minimal", 0.8),
                                          ("orders", "bare", 0.6)):
            ours, base = runs.get((scenario, target)), runs.get((scenario, baseline))
            if ours and base:
                ratio = ours.rps / base.rps
                checks.append((f"{name}: {SCENARIOS[scenario].split(' (')[0]} ≥ {floor} × "
                               f"{TARGETS[baseline][0].split(' ')[0]}", f"{ratio:.2f}×",
                               ratio >= floor))
        for scenario in ("first", "redelivery"):  # order creation's p99: in the table
            r = runs.get((scenario, target))
            if r is not None:
                checks.append((f"{name}: p99 ≤ 50 ms at {a.connections} connections, "
                               f"{SCENARIOS[scenario].split(' (')[0]}", f"{r.p99:.1f} ms",
                               r.p99 <= 50))
        peaks = [r.rss_mb for r in bench.runs if r.target == target]
        if peaks:
            workers = 2 if target == "ours2" else 1
            checks.append((f"{name}: peak RSS ≤ 150 MB per worker",
                           f"{max(peaks) / workers:.0f} MB", max(peaks) / workers <= 150))
    if overhead is not None:
        disk = 2 * float(facts["commit_ms"])
        lines += ["", f"Order creation overhead at one connection (p50, minus the simulator "
                  f"alone): {overhead:.1f} ms, {overhead - disk:.1f} ms without the two "
                  "commits' disk waits."]
    lines += ["", "| target | reached | |", "|---|---:|---|",
              *[f"| {name} | {value} | {'met' if ok else '**missed**'} |"
                for name, value, ok in checks]]
    notes = [c for r in bench.runs for c in r.checks] + bench.notes
    if notes:
        lines += ["", "Checks after the runs (service database unless noted):", "",
                  *[f"- {note}" for note in notes]]
    if bench.profile:
        p = bench.profile
        s = p["summary"]
        total = max(1, s["total"])
        rate_text = ""
        if p["result"]:
            rate_text = f" (the service did {rate(p['result']):,.0f} req/s under the profiler)"
        lines += [
            "",
            f"Profile: py-spy, 100 samples/s, {a.profile_seconds:g} s of the first-delivery "
            f"load{rate_text}; {s['total']:,} samples of the busy thread (time waiting in epoll "
            f"is not sampled). Folded stacks `{short_path(str(p['folded']))}`, flame graph "
            f"`{short_path(str(p['svg']))}`.",
            "",
            "| where (innermost frame) | share |", "|---|---:|",
            *[f"| {layer} | {100 * n / total:.0f}% |" for layer, n in s["layers"]],
            "",
            "| step of the callback path (inclusive) | share |", "|---|---:|",
            *[f"| {label} | {100 * n / total:.0f}% |" for label, n in s["steps"]],
            "",
            "| hottest functions (self) | share |", "|---|---:|",
            *[f"| `{name}` | {100 * n / total:.1f}% |" for name, n in s["self"]],
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_report(path: Path, section: str) -> None:
    if path.exists() and BEGIN in (text := path.read_text()) and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = "# Benchmarks: callbacks and order creation\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")


# ---- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each run")
    parser.add_argument("--sequential", type=float, default=5.0,
                        help="seconds per one-connection order-creation run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--bodies", type=int, default=0,
                        help="unique first deliveries to seed (default: 6,000 per second)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="py-spy the service: when a target is missed (auto)")
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    parser.add_argument("--profile-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--scenarios", default="first,redelivery,orders")
    parser.add_argument("--postgres", choices=("own", "find"), default="own",
                        help="own: a cluster of its own, durable, when the server binaries "
                             "are installed (else as find); find: harness.postgres.find_postgres")
    args = parser.parse_args()
    args.bodies = args.bodies or int(6000 * args.duration)
    args.warmup_bodies = int(6000 * args.warmup) + 1000
    started = time.monotonic()

    wrk = None if args.loadgen == "python" else ensure_wrk()
    if args.loadgen == "wrk" and wrk is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    load = Load(wrk, args.connections, args.threads)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    facts = {"loadavg": f"{os.getloadavg()[0]:.2f}", "memory": f"{memory:.0f} GiB RAM"}
    print(f"{os.cpu_count()} cores, load average {facts['loadavg']}; load generator: "
          f"{load.name}", flush=True)

    server = own_cluster() if args.postgres == "own" else None
    if server is None:
        server = find_postgres()
    if server is None:
        sys.exit("no PostgreSQL: set TEST_DATABASE_URL or install the server binaries")
    if server.fixed_url:
        sys.exit("bench needs a server it may create databases on (not TEST_DATABASE_URL)")
    facts["server"] = ("a cluster of its own" if server.cluster_dir else "the server at "
                       f"{server.admin_dsn.split('@', 1)[-1].rsplit('/', 1)[0]}")
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    processes: list[Process] = []
    try:
        urls = {"ours": server.create_database("bench_load"),
                "ours2": server.create_database("bench_load2"),
                "minimal": server.create_database("bench_minimal")}
        dsns = {k: url.replace("postgresql+asyncpg://", "postgresql://", 1)
                for k, url in urls.items()}
        ours_dsn, minimal_dsn = dsns["ours"], dsns["minimal"]
        for target in SERVICES:
            run_migrations(urls[target])
            asyncio.run(seed(dsns[target], 1, args.warmup_bodies + args.bodies))
        asyncio.run(execute(minimal_dsn, SCHEMA))
        facts["postgres"] = postgres_facts(ours_dsn)
        select_ms, commit_ms = asyncio.run(round_trips(ours_dsn))
        facts["round_trips"] = (f"a round trip to PostgreSQL (`SELECT 1`, asyncpg) takes "
                                f"{select_ms:.2f} ms at p50, a committed one-row INSERT "
                                f"(one WAL flush) {commit_ms:.2f} ms")
        facts["commit_ms"] = f"{commit_ms:.1f}"
        print(facts["round_trips"], flush=True)
        print(f"seeded {args.warmup_bodies + args.bodies:,} pending orders; "
              f"{facts['postgres']}", flush=True)

        simulator = start_simulator(work)
        processes.append(simulator)
        service = {"PAYLETTER_ENV": "sim",
                   "PAYLETTER_BASE_URL": simulator.url + "/", "SHOP_API_TOKEN": SHOP,
                   "OPS_API_TOKEN": OPS, "PAYLETTER_CALLBACK_IPS": "127.0.0.1",
                   "LOG_LEVEL": "WARNING", "SYNC_SWEEPER": "false",
                   "RECONCILE_DAILY_AT": "off", "SHOP_WEBHOOK_URL": "",
                   "WEBHOOK_DISPATCHER": "false"}
        env = {
            **{target: {**service, "DATABASE_URL": urls[target]} for target in SERVICES},
            "minimal": {"BENCH_DSN": minimal_dsn, "BENCH_SIMULATOR_URL": simulator.url},
            "bare": {"BENCH_SIMULATOR_URL": simulator.url},
        }
        servers = {}
        for key in TARGETS:
            servers[key] = start_server(key, env[key], work)
            processes.append(servers[key])
        bench = Bench(args, load, work, dsns, servers, simulator)
        scenarios = args.scenarios.split(",")
        if "first" in scenarios:
            print("first deliveries", flush=True)
            bench.first_deliveries()
        if "redelivery" in scenarios and "first" in scenarios:
            print("redeliveries", flush=True)
            bench.redeliveries()
        if "orders" in scenarios:
            print("order creation", flush=True)
            bench.orders()
        missed = "missed**" in report(bench, started, facts)
        if "first" in scenarios and (args.profile == "always"
                                     or (args.profile == "auto" and missed)):
            print("profiling the service under the first-delivery load (py-spy)", flush=True)
            bench.profile_first_deliveries(args.profile_seconds)
        for process in processes:
            if process.popen.poll() is not None:
                bench.notes.append(f"FAILED: {process.name} exited during the run")
        section = report(bench, started, facts)
    finally:
        for process in reversed(processes):
            process.stop()
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    print(section)
    write_report(Path(args.output), section)


if __name__ == "__main__":
    main()
