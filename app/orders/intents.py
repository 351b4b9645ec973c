"""Signed order intents: the shop's backend decides the order terms, the browser carries them.

A browser can't keep SHOP_API_TOKEN secret, and a price that comes from the browser can be
edited by the buyer. So the shop's backend signs the terms it decided, and the frontend
posts the signed intent to POST /orders without a token:

    token   = "pli1." + base64url(payload) + "." + base64url(HMAC-SHA256(secret, signed))
    signed  = "pli1." + base64url(payload)                      (ASCII bytes)
    payload = the terms as a UTF-8 JSON object

base64url is RFC 4648 §5 without "=" padding. The MAC covers the exact payload bytes, so
any JSON encoder works; this module writes compact JSON with sorted keys so that the test
vectors in docs/integration.md reproduce byte for byte. Shops can copy this file: it needs only the
standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

VERSION = "pli1"
MAX_LIFETIME_SECONDS = 24 * 3600
# The terms an intent may carry. `pgcode` fixes the method; `pgcodes` lets the buyer pick.
REQUIRED = ("order_no", "amount", "product_name", "user_id", "expires_at")
OPTIONAL = ("pgcode", "pgcodes", "taxfree_amount", "tax_amount", "client_id", "user_name",
            "service_name", "custom_parameter", "email_flag", "email_addr", "receipt_flag")


class IntentError(ValueError):
    """The intent can't be trusted or used; the message says why (safe to show)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_payload(terms: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(terms), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def sign_intent(secret: str, terms: Mapping[str, Any]) -> str:
    """The token for `terms` (include `expires_at`: Unix seconds, at most 24 h ahead)."""
    signed = f"{VERSION}.{_b64(encode_payload(terms))}"
    mac = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64(mac)}"


def verify_intent(secret: str, token: str, *, now: float | None = None) -> dict[str, Any]:
    """The terms of a genuine, unexpired intent; IntentError otherwise."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise IntentError("intent is not a signed order intent (pli1.<payload>.<signature>)")
    version, payload, signature = token.split(".")
    if version != VERSION:
        raise IntentError(f"unknown intent version {version[:10]!r}")
    expected = hmac.new(secret.encode(), f"{version}.{payload}".encode(), hashlib.sha256)
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise IntentError("intent signature is not base64url") from None
    if not hmac.compare_digest(given, expected.digest()):
        raise IntentError("intent signature does not match: the terms were altered or "
                          "signed with another secret")
    try:
        terms = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        raise IntentError("intent payload is not base64url JSON") from None
    if not isinstance(terms, dict):
        raise IntentError("intent payload must be a JSON object")
    missing = [name for name in REQUIRED if name not in terms]
    if missing:
        raise IntentError(f"intent lacks {', '.join(missing)}")
    unknown = sorted(set(terms) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise IntentError(f"intent has unknown terms: {', '.join(unknown)}")
    expires_at = terms["expires_at"]
    current = time.time() if now is None else now
    if isinstance(expires_at, bool) or not isinstance(expires_at, int):
        raise IntentError("intent expires_at must be Unix seconds (an integer)")
    if expires_at <= current:
        raise IntentError("intent expired: ask the shop for a fresh one")
    if expires_at > current + MAX_LIFETIME_SECONDS:
        raise IntentError("intent expires_at is more than 24 hours ahead")
    return terms
