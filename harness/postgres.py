"""Finding (or starting) a PostgreSQL server, creating databases on it and migrating them."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def run_migrations(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["skip_logging"] = True
    command.upgrade(config, "head")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A server we may create databases on: `admin_dsn` is a libpq URL to its admin db."""

    admin_dsn: str
    fixed_url: str | None = None  # TEST_DATABASE_URL: use as is, create nothing
    cluster_dir: str | None = None
    pg_ctl: str | None = None
    runner: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def create_database(self, prefix: str) -> str:
        if self.fixed_url:
            return self.fixed_url
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        asyncio.run(execute(self.admin_dsn, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        base = self.admin_dsn.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"

    def close(self) -> None:
        for name in self.created:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                asyncio.run(execute(self.admin_dsn,
                                     f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if self.cluster_dir and self.pg_ctl:
            subprocess.run(
                [*self.runner, self.pg_ctl, "-D", self.cluster_dir, "-m", "immediate", "stop"],
                capture_output=True, check=False)
            shutil.rmtree(os.path.dirname(self.cluster_dir), ignore_errors=True)


async def execute(dsn: str, sql: str) -> None:
    """One statement on `dsn` (a libpq URL), in a connection of its own."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _answers(dsn: str) -> bool:
    try:
        asyncio.run(execute(dsn, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


def postgres_binaries() -> tuple[str, str] | None:
    """initdb and pg_ctl from PATH or Debian's /usr/lib/postgresql/<version>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{bindir}/initdb") and os.path.exists(f"{bindir}/pg_ctl"):
            return f"{bindir}/initdb", f"{bindir}/pg_ctl"
    return None


def server_options(port: int, folder: str, *, durable: bool = False) -> str:
    """pg_ctl's -o: the port, the socket folder, loopback only, room for several services'
    pools (30 connections each by default); fsync off unless durable."""
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
    return options if durable else options + " -c fsync=off"


def start_cluster(*, durable: bool = False, prefix: str = "gateway-pg-"
                  ) -> PostgresServer | None:
    """A throwaway cluster from the server binaries (None without them), on a free port; for
    tests with fsync off, `durable` (fsync on, like production) for measurements."""
    binaries = postgres_binaries()
    if binaries is None:
        return None
    initdb, pg_ctl = binaries
    directory = tempfile.mkdtemp(prefix=prefix)
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: hand the folder to nobody
        shutil.chown(directory, "nobody")
        runner = ["runuser", "-u", "nobody", "--"]
    else:
        runner = []
    port = free_port()
    data = f"{directory}/data"
    subprocess.run([*runner, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*runner, pg_ctl, "-D", data, "-l", f"{directory}/log", "-w", "-o",
                    server_options(port, directory, durable=durable), "start"],
                   check=True, capture_output=True)
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    for _ in range(50):
        if _answers(dsn):
            break
        time.sleep(0.1)
    return PostgresServer(admin_dsn=dsn, cluster_dir=data, pg_ctl=pg_ctl, runner=runner)


def find_postgres() -> PostgresServer | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        return PostgresServer(admin_dsn="", fixed_url=url)
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _answers(local):
        return PostgresServer(admin_dsn=local)
    return start_cluster()
