"""A tiny HTML helper for the server-rendered pages: everything is escaped unless it is Markup.

`render("<td class='{cls}'>{name}</td>", cls=a, name=b)` escapes `a` and `b` with
`html.escape(quote=True)` (safe in text and in quoted attributes alike). Only `Markup` (what
`render` and `join` return) goes in as it is, so a value can't become HTML by accident.
Templates are our own constants, never data; URLs are built with `url()` / `segment()`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote, urlencode


class Markup(str):
    """A string that already is HTML (built by `render` or `join`)."""

    __slots__ = ()


def escape(value: object) -> str:
    if isinstance(value, Markup):
        return value
    return html.escape("" if value is None else str(value), quote=True)


def render(template: str, /, **values: object) -> Markup:
    """The template with every `{name}` replaced by its value, escaped unless Markup."""
    return Markup(template.format_map({name: escape(v) for name, v in values.items()}))


def join(parts: Iterable[object], separator: str = "") -> Markup:
    """Fragments joined; anything that is not Markup is escaped."""
    return Markup(separator.join(escape(part) for part in parts))


def segment(value: str) -> str:
    """One path segment, percent-encoded ('/' included)."""
    return quote(value, safe="")


def url(path: str, params: Mapping[str, str | None] | Sequence[tuple[str, str | None]] = ()
        ) -> str:
    """`path?query` with the empty parameters left out (escape it when it goes in HTML)."""
    items = params.items() if isinstance(params, Mapping) else params
    query = urlencode([(k, v) for k, v in items if v not in (None, "")])
    return f"{path}?{query}" if query else path
