"""End-to-end fixtures: the service and the simulator as real processes over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.processes import Process, start_service, start_simulator
from tests.e2e.stack import ARTIFACTS, Stack, clients_for


@pytest.fixture(scope="session")
def log_dir() -> Path:
    path = ARTIFACTS / "e2e-logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def simulator_process(log_dir: Path) -> Iterator[Process]:
    process = start_simulator(log_dir)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def service_process(
    database_url: str, simulator_process: Process, log_dir: Path
) -> Iterator[Process]:
    name = "service-sqlite" if database_url.startswith("sqlite") else "service-postgresql"
    process = start_service(log_dir, database_url=database_url,
                            simulator_url=simulator_process.url, name=name)
    yield process
    process.stop()


@pytest.fixture
async def stack(
    service_process: Process, simulator_process: Process, engine: Any
) -> AsyncIterator[Stack]:
    async with clients_for(service_process, simulator_process) as stack:
        assert (await stack.sim.post("/_sim/reset")).status_code == 200
        yield stack
