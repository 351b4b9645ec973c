"""The migrations build exactly the schema app/models.py declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Base


async def test_the_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    """A model change without a migration (or a migration the models don't know) fails."""
    async with engine.connect() as conn:
        differences = await conn.run_sync(lambda sync: compare_metadata(
            MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata))
    assert differences == []
