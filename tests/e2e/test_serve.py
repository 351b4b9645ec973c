"""`payletter-gateway serve`, the image's command, as a real process with two workers."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from app.cli import CliContext, cli
from app.settings import Settings
from harness.postgres import free_port
from harness.processes import OPS_TOKEN, SHOP_TOKEN, Process, start

pytestmark = pytest.mark.e2e
SERVE = ["-c", "from app.cli import main; main()", "serve", "--host", "127.0.0.1"]
DELIVERIES = 40


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, log_dir: Path
                ) -> Iterator[Process]:
    """Two workers on an SQLite file that does not exist yet (serve must migrate it)."""
    database = tmp_path_factory.mktemp("serve") / "var" / "gateway.db"
    port = free_port()
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "PAYLETTER_ENV": "sim",
           "PORT": str(port), "WEB_CONCURRENCY": "2", "LOG_FORMAT": "json",
           "SHOP_API_TOKEN": SHOP_TOKEN, "OPS_API_TOKEN": OPS_TOKEN,
           "SYNC_SWEEPER": "false", "RECONCILE_DAILY_AT": "off"}
    process = start("serve-two-workers", SERVE, port=port, health="/readyz", env=env,
                    log_dir=log_dir)
    yield process
    process.stop()


def callback_deliveries(metrics: str) -> float:
    """gateway_deliveries_total{kind="callback",…} summed over its outcomes."""
    pattern = r'^gateway_deliveries_total\{[^}]*kind="callback"[^}]*\} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, metrics, re.MULTILINE))


def test_metrics_sum_both_workers_on_every_scrape(two_workers: Process) -> None:
    def post(_: int) -> int:
        # a fresh connection each time, so both workers accept some
        with httpx.Client(base_url=two_workers.url) as client:
            return client.post("/payletter/callback", json={"tid": "not-a-result"}).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(DELIVERIES)))
    assert all(status == 400 for status in answers), answers  # stored, refused
    served_by = {line["pid"] for line in log_lines(two_workers)
                 if line.get("path") == "/payletter/callback"}
    assert len(served_by) == 2, "both workers must have served callbacks for this to prove it"
    for _ in range(10):
        with httpx.Client(base_url=two_workers.url) as client:
            metrics = client.get("/metrics").text
        assert callback_deliveries(metrics) == DELIVERIES


def test_every_log_line_of_every_process_is_json(two_workers: Process) -> None:
    lines = log_lines(two_workers)
    pids = {line["pid"] for line in lines}
    assert len(pids) == 3  # the supervisor and two workers
    assert any("Started parent process" in line["message"] for line in lines)
    assert all("color_message" not in line for line in lines)


def test_sigterm_stops_every_process_within_the_grace_period(two_workers: Process) -> None:
    started = time.monotonic()
    two_workers.popen.send_signal(signal.SIGTERM)
    code = two_workers.popen.wait(timeout=30)
    assert code == 0
    assert time.monotonic() - started < 10  # docker stop's default
    assert any("Stopping parent process" in line["message"] for line in log_lines(two_workers))


def log_lines(process: Process) -> list[dict[str, object]]:
    lines = [line for line in process.output().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return parsed


def test_serve_refuses_an_sqlite_folder_it_cannot_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{blocker}/var/gateway.db")
    result = CliRunner().invoke(cli, ["serve"], obj=CliContext(settings=settings))
    assert result.exit_code == 1
    assert "cannot be created" in result.output and "volume" in result.output
    assert "Traceback" not in result.output
