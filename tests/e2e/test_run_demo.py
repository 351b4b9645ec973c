"""`make run`'s launcher: both processes come up, the demo shop answers, Ctrl-C/TERM stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.postgres import free_port, run_migrations
from harness.processes import ROOT

pytestmark = pytest.mark.e2e


def test_the_demo_launcher_starts_both_processes_and_stops_them(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    run_migrations(url)
    port, sim_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": url}
    for name in ("PAYLETTER_BASE_URL", "PUBLIC_BASE_URL", "SHOP_API_TOKEN", "OPS_API_TOKEN"):
        env.pop(name, None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "scripts.run_demo", "--port", str(port),
         "--sim-port", str(sim_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        banner = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C stops both" not in banner:
            assert launcher.stdout is not None and time.monotonic() < deadline, banner
            banner += launcher.stdout.readline()
        assert f"http://127.0.0.1:{port}/demo" in banner
        page = httpx.get(f"http://127.0.0.1:{port}/demo", timeout=5)
        assert page.status_code == 200 and "id='pay'" in page.text
        assert httpx.get(f"http://127.0.0.1:{sim_port}/_sim/health", timeout=5).json() == {
            "ok": True}
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=20)
    for target in (port, sim_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{target}/healthz", timeout=2)
