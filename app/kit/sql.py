"""What every repository shares: its base class, dialect-aware INSERT … ON CONFLICT,
optional equality filters, keyset pages over ids."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    """Queries on the caller's session; the caller commits (a repository may flush, never
    commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


def insert_for(session: AsyncSession, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support for the session's dialect."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


T = TypeVar("T")


def where_given(stmt: Select[T], *filters: tuple[Any, str | None]) -> Select[T]:
    """`column == value` for each (column, value) whose value is given."""
    for column, value in filters:
        if value:
            stmt = stmt.where(column == value)
    return stmt


def id_range(stmt: Select[T], column: Any, after_id: int, up_to_id: int | None
              ) -> Select[T]:
    """Rows with `after_id` < id (<= `up_to_id`): one page of a keyset walk over ids."""
    stmt = stmt.where(column > after_id)
    return stmt if up_to_id is None else stmt.where(column <= up_to_id)
