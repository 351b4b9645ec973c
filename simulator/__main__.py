"""python -m simulator --host 127.0.0.1 --port 8001 [...]

Command-line options win over the SIM_* environment variables, which win over defaults.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import uvicorn

from simulator.app import create_app
from simulator.config import SimConfig


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=_env_int("SIM_PORT") or 8001,
                        help="port to listen on (SIM_PORT; default 8001)")
    parser.add_argument(
        "--public-url", default=os.environ.get("SIM_PUBLIC_URL"),
        help="how browsers reach the simulator (SIM_PUBLIC_URL; default http://HOST:PORT)",
    )
    parser.add_argument(
        "--callback-interval", type=float, default=_env_float("SIM_CALLBACK_INTERVAL"),
        help="seconds between callback redeliveries (SIM_CALLBACK_INTERVAL; default 300)",
    )
    parser.add_argument(
        "--callback-max-attempts", type=int, default=_env_int("SIM_CALLBACK_MAX_ATTEMPTS"),
        help="attempts per callback in all (SIM_CALLBACK_MAX_ATTEMPTS; default 20)",
    )
    parser.add_argument(
        "--callback-timeout", type=float, default=_env_float("SIM_CALLBACK_TIMEOUT"),
        help="seconds to wait for the callback receiver (SIM_CALLBACK_TIMEOUT; default 10)",
    )
    parser.add_argument(
        "--callback-source-address", default=os.environ.get("SIM_CALLBACK_SOURCE_ADDRESS"),
        help="local address callbacks leave from, e.g. 127.0.0.2 (SIM_CALLBACK_SOURCE_ADDRESS)",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    defaults = SimConfig()
    return SimConfig(
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        callback_interval=(
            args.callback_interval if args.callback_interval is not None
            else defaults.callback_interval
        ),
        callback_max_attempts=args.callback_max_attempts or defaults.callback_max_attempts,
        callback_timeout=args.callback_timeout or defaults.callback_timeout,
        callback_source_address=args.callback_source_address or None,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    app = create_app(config_from_args(args))
    # proxy_headers=False always: nothing may rewrite the peer address behind our back.
    # workers=1 always: payments live in this process's memory, and uvicorn would otherwise
    # take WEB_CONCURRENCY from the environment (and refuse an app object with workers > 1).
    uvicorn.run(app, host=args.host, port=args.port, workers=1, proxy_headers=False,
                log_level=args.log_level)


if __name__ == "__main__":
    main()
