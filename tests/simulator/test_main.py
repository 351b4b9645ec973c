"""python -m simulator: options, SIM_* fallbacks, and uvicorn always without proxy headers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from harness.postgres import free_port
from simulator import __main__ as cli

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_build_the_public_url_from_host_and_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SIM_PUBLIC_URL", "SIM_CALLBACK_INTERVAL", "SIM_CALLBACK_MAX_ATTEMPTS",
                 "SIM_CALLBACK_SOURCE_ADDRESS", "SIM_CALLBACK_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    config = cli.config_from_args(cli.build_parser().parse_args(["--port", "9001"]))
    assert config.public_url == "http://127.0.0.1:9001"
    assert (config.callback_interval, config.callback_max_attempts) == (300, 20)
    assert config.callback_source_address is None


def test_env_vars_are_fallbacks_and_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_PUBLIC_URL", "http://sim.local:8001/")
    monkeypatch.setenv("SIM_CALLBACK_INTERVAL", "0.5")
    monkeypatch.setenv("SIM_CALLBACK_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("SIM_CALLBACK_SOURCE_ADDRESS", "127.0.0.2")
    from_env = cli.config_from_args(cli.build_parser().parse_args([]))
    assert (from_env.public_url, from_env.callback_interval) == ("http://sim.local:8001", 0.5)
    assert (from_env.callback_max_attempts, from_env.callback_source_address) == (
        7, "127.0.0.2"
    )
    from_args = cli.config_from_args(cli.build_parser().parse_args(
        ["--callback-interval", "0", "--callback-max-attempts", "2",
         "--callback-source-address", "127.0.0.9"]
    ))
    assert (from_args.callback_interval, from_args.callback_max_attempts) == (0, 2)
    assert from_args.callback_source_address == "127.0.0.9"


def test_main_runs_uvicorn_with_proxy_headers_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    cli.main(["--host", "127.0.0.1", "--port", "8123"])
    assert seen["proxy_headers"] is False
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)


@pytest.mark.e2e
def test_the_simulator_starts_as_one_process_on_sim_port_whatever_web_concurrency_says(
) -> None:
    """The image's simulator stage inherits WEB_CONCURRENCY; uvicorn must not take it."""
    port = free_port()
    env = {**os.environ, "WEB_CONCURRENCY": "2", "SIM_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--host", "127.0.0.1"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the simulator did not answer on SIM_PORT"
                time.sleep(0.1)
        assert health.status_code == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "parent process" not in output  # no multiprocess supervisor
