"""What the ops page's templates (app/templates/ops/) are given, beyond the rows themselves:
pure functions from rows to plain data, no HTML, no queries and no HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from app.models import Order
from app.orders.queries import FILTER_PARAMS, SORTS
from app.orders.schemas import OrderOut
from app.orders.states import OrderStatus
from app.payletter.methods import METHODS

# -- the order list -----------------------------------------------------------------------


@dataclass(frozen=True)
class FilterField:
    """One field of the order list's form: a select if it has options, else an input."""

    name: str
    current: str
    options: Sequence[tuple[str, str]] = ()  # (value, label)
    type: str = "text"
    size: int = 40  # maxlength


def _select(name: str, options: Sequence[tuple[str, str]], current: str) -> FilterField:
    if current and current not in {value for value, _ in options}:
        options = [*options, (current, current)]  # shown as given, the page refuses it
    return FilterField(name, current, options)


def filter_fields(params: Mapping[str, str]) -> list[FilterField]:
    """The filters of GET /orders, as the form shows them, holding the values given."""
    def cur(name: str) -> str:
        return params.get(name, "")

    statuses = [("", "any")] + [(s.value, s.value) for s in OrderStatus]
    methods = [("", "any")] + [(code, f"{code} ({rule.label})")
                               for code, rule in sorted(METHODS.items())]
    sorts = [(f"{sign}{column}", f"{column} {'↓' if sign else '↑'}")
             for column in SORTS for sign in ("-", "")]
    fields = [
        _select("status", statuses, cur("status")),
        _select("pgcode", methods, cur("pgcode")),
        _select("needs_review", [("", "any"), ("true", "only"), ("false", "hide")],
                cur("needs_review")),
        FilterField("user_id", cur("user_id"), size=50),
        FilterField("order_no", cur("order_no")),
        FilterField("tid", cur("tid")),
        FilterField("client_id", cur("client_id"), size=20),
        *(FilterField(name, cur(name), type="date", size=10)
          for name in ("created_from", "created_to", "paid_from", "paid_to")),
        _select("sort", sorts, cur("sort") or "-created_at"),
        FilterField("limit", cur("limit") or "50", type="number", size=3),
    ]
    known = {field.name for field in fields}
    return fields + [FilterField(name, cur(name)) for name in FILTER_PARAMS if name not in known]


# -- one order ----------------------------------------------------------------------------

Shown = Literal["status", "time", "json", "won", "text"]


def order_fields(order: Order) -> list[tuple[str, Shown, Any]]:
    """Every field the API shows for an order, in the API's order, and how to show it."""
    rows: list[tuple[str, Shown, Any]] = []
    for name in OrderOut.model_fields:
        value = getattr(order, name)
        how: Shown
        if name == "status":
            how = "status"
        elif isinstance(value, datetime):
            how = "time"
        elif isinstance(value, dict):
            how = "json"
        elif name.endswith("amount") or name == "disposable_cup_deposit":
            how = "won"
        else:
            how = "text"
        rows.append((name, how, value))
    return rows


# -- daily totals -------------------------------------------------------------------------

PALETTE = ("#0969da", "#1a7f37", "#bf3989", "#bc4c00", "#8250df", "#1b7c83", "#9a6700",
           "#cf222e", "#57606a", "#0550ae", "#116329", "#953800")

DailyRows = Sequence[tuple[str, str, int, int]]  # (Korea day, pgcode, count, amount)


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2, 2.5 or 5 × 10^k that is at least `value` (an axis maximum)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return 10 * magnitude  # pragma: no cover


@dataclass(frozen=True)
class GridLine:
    x1: int
    x2: int
    y: str
    label_x: int
    label_y: str
    label: str


@dataclass(frozen=True)
class Bar:
    day: str
    pgcode: str
    count: int
    amount: int
    x: str
    y: str
    width: str
    height: str
    color: str


@dataclass(frozen=True)
class Tick:
    x: str
    y: int
    label: str


@dataclass(frozen=True)
class Chart:
    """Stacked bars, one per Korea day, a segment per method: what the SVG draws."""

    width: int
    height: int
    grid: list[GridLine]
    bars: list[Bar]
    ticks: list[Tick]
    legend: list[tuple[str, str]]  # (method, color)


def daily_chart(days: Sequence[date], rows: DailyRows, measure: str) -> Chart:
    methods = sorted({pgcode for _, pgcode, _, _ in rows})
    color = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    by_day: dict[str, list[tuple[str, int, int]]] = {}
    for day_text, pgcode, count, amount in rows:
        by_day.setdefault(day_text, []).append((pgcode, count, amount))

    def size(count: int, amount: int) -> int:
        return count if measure == "count" else amount

    top = _nice_ceiling(max((sum(size(c, a) for _, c, a in by_day.get(d.isoformat(), []))
                             for d in days), default=0))
    width, height, left, right, above, below = 760, 260, 86, 10, 12, 34
    plot_w, plot_h = width - left - right, height - above - below
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.68
    grid = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = above + plot_h * (1 - fraction)
        label = f"{top * fraction:,.0f}" + ("" if measure == "count" else " won")
        grid.append(GridLine(left, width - right, f"{y:.1f}", left - 6, f"{y + 4:.1f}", label))
    bars, ticks = [], []
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        base = float(above + plot_h)
        for pgcode, count, amount in sorted(by_day.get(day.isoformat(), [])):
            h = plot_h * size(count, amount) / top
            base -= h
            bars.append(Bar(day.isoformat(), pgcode, count, amount, f"{x:.1f}", f"{base:.1f}",
                            f"{bar_w:.1f}", f"{h:.1f}", color[pgcode]))
        ticks.append(Tick(f"{x + bar_w / 2:.1f}", height - below + 16, day.strftime("%m-%d")))
    return Chart(width, height, grid, bars, ticks, [(m, color[m]) for m in methods])


Cell = tuple[int, int] | None  # (count, amount), None: nothing paid


@dataclass(frozen=True)
class DailyTable:
    methods: list[str]
    rows: list[tuple[str, list[Cell], Cell]]  # newest day first: (day, a cell per method, all)


def daily_table(days: Sequence[date], rows: DailyRows) -> DailyTable:
    methods = sorted({pgcode for _, pgcode, _, _ in rows})
    cells = {(day, pgcode): (count, amount) for day, pgcode, count, amount in rows}
    table = []
    for d in reversed(days):
        day = d.isoformat()
        row = [cells.get((day, m)) for m in methods]
        count = sum(c[0] for c in row if c)
        table.append((day, [c if c and c[0] else None for c in row],
                      (count, sum(c[1] for c in row if c)) if count else None))
    return DailyTable(methods, table)
