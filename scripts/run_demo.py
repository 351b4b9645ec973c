"""`make run`: the service (SQLite) and the Payletter simulator, side by side, on loopback.

Both are started with proxy headers off (the service decides who is calling by itself).
Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_healthy(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} stopped during start-up (exit code {proc.returncode}); see above")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{name} did not answer {url} within 30 s")


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # also when started in the background
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--sim-port", type=int, default=8001)
    args = parser.parse_args()

    service_url = f"http://{args.host}:{args.port}"
    sim_url = f"http://{args.host}:{args.sim_port}"
    env = {
        **os.environ,
        "PAYLETTER_ENV": "sim",
        "PAYLETTER_BASE_URL": os.environ.get("PAYLETTER_BASE_URL", sim_url + "/"),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", service_url),
    }
    simulator = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--host", args.host, "--port", str(args.sim_port),
         "--callback-interval", os.environ.get("SIM_CALLBACK_INTERVAL", "10")],
        cwd=ROOT, env=env)
    service = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", args.host,
         "--port", str(args.port), "--no-proxy-headers"],
        cwd=ROOT, env=env)
    try:
        wait_healthy(f"{sim_url}/_sim/health", simulator, "the simulator")
        wait_healthy(f"{service_url}/healthz", service, "the service")
        token = env.get("SHOP_API_TOKEN") or "sim-shop-token"
        ops = env.get("OPS_API_TOKEN") or "sim-ops-token"
        print(f"""
  Payletter gateway demo is running (no real money moves).
    Database: {env.get("DATABASE_URL", "sqlite+aiosqlite:///./var/gateway.db")}

    Demo shop:           {service_url}/demo        <- open this and pay for an order
    Payletter simulator: {sim_url}/_sim/payments

    Shop token: {token}     Ops token: {ops}
    curl -H 'Authorization: Bearer {ops}' {service_url}/orders/<order_no>

  Ctrl-C stops both.
""", flush=True)
        while simulator.poll() is None and service.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (service, simulator):
            if proc.poll() is None:
                proc.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for proc in (service, simulator):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
