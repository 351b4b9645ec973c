"""Start the service and the simulator as real processes on loopback ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(name: str, args: list[str], *, port: int, health: str, env: dict[str, str],
          log_dir: Path, timeout: float = 30.0) -> Process:
    log = log_dir / f"{name}.log"
    handle = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
        stdout=handle, stderr=subprocess.STDOUT,
    )
    process = Process(name, popen, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{process.output()}")
        try:
            if httpx.get(process.url + health, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.stop()
    raise RuntimeError(f"{name} did not become healthy:\n{process.output()}")


def start_simulator(log_dir: Path, *, callback_interval: float = 0.3,
                    source_address: str | None = None) -> Process:
    port = free_port()
    args = ["-m", "simulator", "--host", "127.0.0.1", "--port", str(port),
            "--callback-interval", str(callback_interval), "--callback-max-attempts", "20",
            "--callback-timeout", "5", "--log-level", "warning"]
    if source_address:
        args += ["--callback-source-address", source_address]
    return start("simulator", args, port=port, health="/_sim/health", env={}, log_dir=log_dir)


SHOP_TOKEN = "e2e-shop-token"
OPS_TOKEN = "e2e-ops-token"


def start_service(log_dir: Path, *, database_url: str, simulator_url: str,
                  extra_env: dict[str, str] | None = None, name: str = "service",
                  port: int | None = None) -> Process:
    """The service as `make serve` runs it, on `port` (a free one if None)."""
    port = port or free_port()
    env = {
        "DATABASE_URL": database_url,
        "PAYLETTER_ENV": "sim",
        "PAYLETTER_BASE_URL": simulator_url + "/",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SHOP_API_TOKEN": SHOP_TOKEN,
        "OPS_API_TOKEN": OPS_TOKEN,
        "PAYLETTER_TIMEOUT_SECONDS": "5",
        **(extra_env or {}),
    }
    # --no-proxy-headers: the app alone decides who is calling.
    args = ["-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
            "--no-proxy-headers", "--log-level", "warning"]
    return start(name, args, port=port, health="/healthz", env=env, log_dir=log_dir)
