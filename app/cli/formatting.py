"""Text for a terminal: amounts, Korea times, fixed-width tables of stored (untrusted) text."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime

from app.kit.korea_time import KST


def money(amount: int) -> str:
    return f"{amount:,}"


def won(amount: int) -> str:
    return f"{amount:,} won"


def kst(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def clean(text: str) -> str:
    """No control characters from stored data reach the terminal (escape sequences)."""
    return "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def width(text: str) -> int:
    """Columns on a terminal: Korean (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def shorten(text: str, limit: int) -> str:
    text = clean(text)
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        used += width(ch)
        if used > limit - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
          right: tuple[int, ...] = ()) -> list[str]:
    """Fixed-width columns, two spaces apart; `right` columns (amounts) right-aligned."""
    rows = [[clean(cell) for cell in row] for row in rows]
    every = [list(headers), *rows] if headers else rows
    widths = [max(width(row[i]) for row in every) for i in range(len(every[0]))]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - width(cell))
            parts.append(pad + cell if i in right else cell + pad)
        return "  ".join(parts).rstrip()

    return [line(row) for row in every]
