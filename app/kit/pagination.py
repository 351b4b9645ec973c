"""The one way lists are paged: `limit` and an opaque `cursor` naming where to go on.

Every list is keyset-paged (never OFFSET): the order table on (sort column, id), the other
lists newest first on id, where the cursor is the id of the last row of the previous page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from app.errors import InvalidRequest
from app.kit.deps import MAX_ROW_ID


@dataclass(frozen=True)
class Page:
    limit: int
    cursor: str | None

    @property
    def id_cursor(self) -> int | None:
        """An id-keyed list's cursor: the id of the last row of the previous page."""
        if self.cursor is None:
            return None
        if not self.cursor.isdigit() or not 1 <= int(self.cursor) <= MAX_ROW_ID:
            raise InvalidRequest("cursor is not one this list gave out", field="cursor")
        return int(self.cursor)


class Pagination:
    """A list's paging parameters, with that list's default and largest page."""

    def __init__(self, *, default: int = 100, maximum: int = 1000) -> None:
        self.default, self.maximum = default, maximum

    def __call__(
        self,
        limit: Annotated[int | None, Query(ge=1, description="rows per page")] = None,
        cursor: Annotated[str | None, Query(max_length=512, description=(
            "where the previous page ended (its next_cursor, or the id of its last row)"
        ))] = None,
    ) -> Page:
        if limit is not None and limit > self.maximum:
            raise InvalidRequest(f"limit must be between 1 and {self.maximum}", field="limit")
        return Page(limit or self.default, cursor)


PageDep = Annotated[Page, Depends(Pagination())]
