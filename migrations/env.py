"""Alembic environment: migrates whatever DATABASE_URL names (async drivers included)."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from app import models  # noqa: F401  (registers the tables)
from app.db import Base, create_engine, sqlite_file

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        from app.settings import Settings

        url = Settings().database_url
    return str(url)


def ensure_sqlite_directory(url: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = database_url()
    ensure_sqlite_directory(url)
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(do_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
