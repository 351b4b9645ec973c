"""The one Jinja environment: every page is a template in app/templates/, autoescaped.

A value goes into a page only through `{{ … }}`, which escapes it (safe in text and in quoted
attributes alike); templates are files of the package, never data. The filters here format
values (times in Korea time, amounts in won) and never produce HTML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from app.kit.korea_time import KST


def kst(value: datetime | None) -> str | None:
    """A moment in Korea time, zone named (None stays None: the page shows a dash)."""
    return None if value is None else value.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")


def won(amount: int | None) -> str | None:
    return None if amount is None else f"{amount:,} won"


def thousands(number: int) -> str:
    return f"{number:,}"


def as_json(value: Any) -> str:
    """A stored document, indented (the order's payment details)."""
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str)


def compact_json(value: Any) -> str:
    """A small document on one line (an audit entry's detail)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def segment(value: str) -> str:
    """One path segment, percent-encoded ('/' included)."""
    return quote(value, safe="")


def url(path: str, params: Mapping[str, str | None] | Sequence[tuple[str, str | None]] = ()
        ) -> str:
    """`path?query` with the empty parameters left out (the template escapes it)."""
    items = params.items() if isinstance(params, Mapping) else params
    query = urlencode([(k, v) for k, v in items if v not in (None, "")])
    return f"{path}?{query}" if query else path


ENV = Environment(
    loader=PackageLoader("app", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a name missing from the context is an error, not ""
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(kst=kst, won=won, thousands=thousands, as_json=as_json,
                   compact_json=compact_json, segment=segment)
ENV.globals.update(url=url)


def render(name: str, /, **context: Any) -> str:
    """The template `name` (a path under app/templates/) rendered with `context`."""
    return ENV.get_template(name).render(**context)


def html_page(name: str, /, *, status_code: int = 200, headers: Mapping[str, str] | None = None,
              **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status_code=status_code, headers=headers)
