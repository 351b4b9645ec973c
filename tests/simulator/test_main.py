"""python -m simulator: options, SIM_* fallbacks, and uvicorn always without proxy headers."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

from simulator import __main__ as cli


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
