"""Finding orders: the filters of GET /orders, the ops page and the CLI, in one place.

Pages are keyset-paginated on (sort column, id): a cursor names the last row seen, so rows
arriving meanwhile never shift a page (no row skipped or repeated). Exports walk the same
keyset in batches, each in a short session of its own, so memory stays flat however many
rows match.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import InvalidRequest
from app.kit.korea_time import check_instant, korea_day_start, parse_day
from app.models import Order
from app.orders.repository import OrderSearchRepository
from app.orders.schemas import OrderOut
from app.orders.states import OrderStatus

MAX_LIMIT = 500
SORTS = ("created_at", "paid_at", "amount")


@dataclass(frozen=True)
class SortKey:
    column: str = "created_at"
    descending: bool = True

    @classmethod
    def parse(cls, text: str | None) -> SortKey:
        raw = (text or "-created_at").strip()
        column = raw.lstrip("-")
        if column not in SORTS:
            raise InvalidRequest(f"sort must be one of {', '.join(SORTS)} (prefix - for "
                                 "descending)", field="sort")
        return cls(column, raw.startswith("-"))

    def __str__(self) -> str:
        return f"{'-' if self.descending else ''}{self.column}"


@dataclass(frozen=True)
class OrderFilter:
    statuses: tuple[str, ...] = ()
    pgcode: str | None = None
    user_id: str | None = None
    order_no: str | None = None
    tid: str | None = None
    client_id: str | None = None
    # UTC instants of Korea-day boundaries: [from, to)
    created_from: datetime | None = None
    created_to: datetime | None = None
    paid_from: datetime | None = None
    paid_to: datetime | None = None
    echo: dict[str, str] = field(default_factory=dict, compare=False)


FILTER_PARAMS = ("status", "pgcode", "user_id", "order_no", "tid", "client_id",
                 "created_from", "created_to", "paid_from", "paid_to", "needs_review")


def _day(params: Mapping[str, str], name: str) -> date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return parse_day(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", field=name) from None


def parse_filter(params: Mapping[str, str]) -> OrderFilter:
    """Query parameters named after the columns → a filter; InvalidRequest on bad values."""
    statuses = [s.strip() for s in (params.get("status") or "").split(",") if s.strip()]
    known = {s.value for s in OrderStatus}
    unknown = [s for s in statuses if s not in known]
    if unknown:
        raise InvalidRequest(f"unknown status {unknown[0]!r}; one of {', '.join(sorted(known))}",
                             field="status")
    review = (params.get("needs_review") or "").strip().lower()
    if review in ("1", "true", "yes"):
        statuses = ["needs_review"]
    elif review in ("0", "false", "no"):
        statuses = statuses or [s for s in sorted(known) if s != "needs_review"]
    elif review:
        raise InvalidRequest("needs_review must be true or false", field="needs_review")
    bounds: dict[str, datetime | None] = {}
    for prefix in ("created", "paid"):
        start, end = _day(params, f"{prefix}_from"), _day(params, f"{prefix}_to")
        if start and end and end < start:
            raise InvalidRequest(f"{prefix}_to is before {prefix}_from", field=f"{prefix}_to")
        bounds[f"{prefix}_from"] = korea_day_start(start) if start else None
        # _to is inclusive: up to the start of the next Korea day
        bounds[f"{prefix}_to"] = korea_day_start(end + timedelta(days=1)) if end else None

    def text(name: str, limit: int) -> str | None:
        value = (params.get(name) or "").strip()
        if len(value) > limit:
            raise InvalidRequest(f"{name} is longer than {limit} characters", field=name)
        return value or None

    return OrderFilter(
        statuses=tuple(statuses), pgcode=text("pgcode", 20), user_id=text("user_id", 50),
        order_no=text("order_no", 40), tid=text("tid", 40), client_id=text("client_id", 20),
        echo={k: params[k] for k in FILTER_PARAMS if params.get(k)},
        **bounds,
    )


def encode_cursor(order: Order, sort: SortKey) -> str:
    value = getattr(order, sort.column)
    raw = [value.isoformat() if isinstance(value, datetime) else value, order.id, str(sort)]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortKey) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, last_id, cursor_sort = json.loads(base64.urlsafe_b64decode(padded))
        if cursor_sort != str(sort) or not isinstance(last_id, int):
            raise ValueError("cursor of another sort")
        if sort.column in ("created_at", "paid_at"):
            # Bound to a query: a naive or far-off time would fail there, not here.
            value = check_instant(datetime.fromisoformat(value))
        elif not isinstance(value, int):
            raise ValueError("bad amount")
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidRequest("cursor is not one this listing gave out (or the sort changed)",
                             field="cursor") from None
    return value, last_id


@dataclass(frozen=True)
class OrderPage:
    items: list[Order]
    next_cursor: str | None


async def search_orders(session: AsyncSession, flt: OrderFilter, *, sort: SortKey,
                        cursor: str | None = None, limit: int = 50) -> OrderPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    after = decode_cursor(cursor, sort) if cursor else None
    rows = list(await OrderSearchRepository(session).page(flt, sort, after, limit + 1))
    more = len(rows) > limit
    items = rows[:limit]
    return OrderPage(items, encode_cursor(items[-1], sort) if more and items else None)


async def order_totals(session: AsyncSession, flt: OrderFilter) -> dict[str, int]:
    count, amount, refunded = await OrderSearchRepository(session).totals(flt)
    return {"count": count, "amount": amount, "refunded": refunded}


async def iter_orders(sessionmaker: async_sessionmaker[AsyncSession], flt: OrderFilter, *,
                      sort: SortKey, batch: int = 1000) -> AsyncIterator[list[Order]]:
    """Every matching order, `batch` at a time, each batch read in a session of its own."""
    after: tuple[Any, int] | None = None
    while True:
        # Closing the session ends the read (SQLite: its lock) and detaches the rows
        # with their values loaded.
        async with sessionmaker() as session:
            rows = list(await OrderSearchRepository(session).page(flt, sort, after, batch))
        if not rows:
            return
        yield rows
        last = rows[-1]
        key = (getattr(last, sort.column), last.id)
        if key == after:  # a key that doesn't move would loop forever: never silently
            raise RuntimeError(f"export stuck at order id {last.id}: unreadable sort value")
        after = key
        if len(rows) < batch:
            return


CSV_COLUMNS = ("order_no", "status", "client_id", "pgcode", "paid_pgcode", "amount",
               "taxfree_amount", "tax_amount", "cancelled_amount", "product_name", "user_id",
               "user_name", "tid", "cid", "created_at", "paid_at", "transaction_date",
               "review_reason")


def csv_row(order: Order) -> list[str]:
    values = []
    for name in CSV_COLUMNS:
        value = getattr(order, name)
        text = value.isoformat() if isinstance(value, datetime) else ("" if value is None
                                                                      else str(value))
        # Spreadsheets run cells starting with = + - @ as formulas: neutralise them.
        if text[:1] in ("=", "+", "-", "@", "\t", "\r") and name not in ("amount",):
            text = "'" + text
        values.append(text)
    return values


async def csv_stream(sessionmaker: async_sessionmaker[AsyncSession], flt: OrderFilter,
                     sort: SortKey) -> AsyncIterator[str]:
    """The CSV export, produced batch by batch (a BOM first: Excel then reads Korean right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue()
    async for rows in iter_orders(sessionmaker, flt, sort=sort):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(csv_row(order) for order in rows)
        yield buffer.getvalue()


async def orders_page(session: AsyncSession, flt: OrderFilter, *, sort: SortKey,
                      cursor: str | None = None, limit: int = 50, totals: bool = True
                      ) -> dict[str, Any]:
    """The body of GET /orders (and `orders list --json`)."""
    page = await search_orders(session, flt, sort=sort, cursor=cursor, limit=limit)
    body: dict[str, Any] = {
        "items": [OrderOut.model_validate(o).model_dump(mode="json") for o in page.items],
        "next_cursor": page.next_cursor,
        "sort": str(sort),
        "filters": flt.echo,
    }
    if totals:
        body["totals"] = await order_totals(session, flt)
    return body
