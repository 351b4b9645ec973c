"""`serve`, `migrate` and `check-config`: the service, its database schema, its settings."""

from __future__ import annotations

import os
from pathlib import Path

import click

from app.cli.common import CliContext, CliError, log, pass_cli
from app.db import sqlite_file

ROOT = Path(__file__).resolve().parents[2]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True, envvar="PORT")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              envvar="WEB_CONCURRENCY")
@click.option("--graceful-shutdown", type=int, default=25, show_default=True,
              envvar="GRACEFUL_SHUTDOWN_SECONDS",
              help="Seconds in-flight requests get to finish after SIGTERM.")
@click.option("--log-level", default=None, help="Overrides LOG_LEVEL.")
@pass_cli
def serve(obj: CliContext, host: str, port: int, workers: int, graceful_shutdown: int,
          log_level: str | None) -> None:
    """Run the service (PORT, WEB_CONCURRENCY, GRACEFUL_SHUTDOWN_SECONDS also work)."""
    import uvicorn

    from app.metrics import workers_share_metrics
    from app.observability import configure_logging, uvicorn_log_config

    settings = obj.load_settings()  # a bad setting stops here, once, not in every worker
    level = (log_level or settings.log_level).upper()
    configure_logging(settings.log_format, level)
    database = sqlite_file(settings.database_url)
    if database is not None:  # the embedded database has no separate migration step
        _migrate_sqlite(database)
    with workers_share_metrics(workers):  # a scrape sums every worker's counters
        # proxy_headers=False: the app alone decides who is calling (TRUSTED_PROXIES).
        # access_log=False: the app writes its own access line, with the request id.
        uvicorn.run("app.main:app", host=host, port=port, workers=workers,
                    proxy_headers=False, log_level=level.lower(), access_log=False,
                    log_config=uvicorn_log_config(settings.log_format, level),
                    timeout_graceful_shutdown=graceful_shutdown)


def _migrate_sqlite(database: Path) -> None:
    folder = database.absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"the SQLite database folder {folder} cannot be created ({exc.strerror}):"
                       " mount a writable volume there or set DATABASE_URL") from None
    if not os.access(folder, os.W_OK):
        raise CliError(f"the SQLite database folder {folder} is not writable by uid "
                       f"{os.getuid()}: mount a writable volume there (the image declares "
                       "/srv/var) or set DATABASE_URL to PostgreSQL")
    log.info("migrating the SQLite database %s", database)
    upgrade_database("head", quiet_logging=True)


@click.command()
@click.argument("revision", default="head")
def migrate(revision: str) -> None:
    """alembic upgrade (DATABASE_URL)."""
    upgrade_database(revision)


def upgrade_database(revision: str, *, quiet_logging: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    # The working directory first (the image's /srv), then the source tree.
    candidates = [Path.cwd() / "alembic.ini", ROOT / "alembic.ini"]
    found = next((path for path in candidates if path.exists()), None)
    if found is None:
        raise click.ClickException("alembic.ini not found here or next to the package")
    config = Config(str(found))
    # The service's own log handler (JSON when asked) instead of alembic.ini's.
    config.attributes["skip_logging"] = quiet_logging
    command.upgrade(config, revision)


@click.command("check-config")
@pass_cli
def check_config(obj: CliContext) -> None:
    """Load the settings and report problems."""
    settings = obj.load_settings()
    click.echo(f"ok: PAYLETTER_ENV={settings.payletter_env}, Payletter at "
               f"{settings.api_base_url}, merchants {', '.join(settings.merchants)}")
