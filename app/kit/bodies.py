"""Reading what Payletter and browsers send: a JSON object or form fields."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl


class BodyError(ValueError):
    pass


def parse_fields(body: bytes, content_type: str | None) -> dict[str, Any]:
    """JSON object or form fields; BodyError if it is neither."""
    media = (content_type or "").split(";")[0].strip().lower()
    # A JSON object is read as JSON whatever the header claims: "{" opens no form field.
    if media == "application/json" or body.lstrip()[:1] == b"{":
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BodyError("body is not valid JSON") from exc
        except RecursionError as exc:  # "[[[[…" fits in any size limit
            raise BodyError("body is nested too deeply") from exc
        if not isinstance(value, dict):
            raise BodyError("body must be a JSON object")
        return value
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BodyError("form body must be URL-encoded") from exc
    # Korean PG pages are sometimes EUC-KR; accept it rather than mangle the names.
    for encoding in ("utf-8", "cp949"):
        try:
            return dict(parse_qsl(text, keep_blank_values=True, encoding=encoding,
                                  errors="strict", max_num_fields=200))
        except UnicodeDecodeError:
            continue
        except ValueError as exc:
            raise BodyError(f"form body is malformed: {exc}") from exc
    raise BodyError("form body is neither UTF-8 nor EUC-KR")
