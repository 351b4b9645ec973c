"""Payletter's result signature: sha256(user_id + amount + tid + PAYMENT key), hex."""

from __future__ import annotations

import hashlib
import hmac
import string

_HEX_DIGITS = frozenset(string.hexdigits)
_SHA256_HEX_LENGTH = 64
_VISIBLE_PREFIX = 8


def compute_payhash(user_id: str, amount: int, tid: str, payment_key: str) -> str:
    # bool is an int subclass and str(True) == "True": refuse it rather than sign garbage.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amount must be an int (won)")
    message = f"{user_id}{amount}{tid}{payment_key}"
    return hashlib.sha256(message.encode("utf-8")).hexdigest().upper()


def _looks_like_sha256_hex(value: str) -> bool:
    return len(value) == _SHA256_HEX_LENGTH and all(ch in _HEX_DIGITS for ch in value)


def verify_payhash(
    payhash: str | None, *, user_id: str, amount: int, tid: str, payment_key: str
) -> bool:
    if not payhash or not isinstance(payhash, str) or not _looks_like_sha256_hex(payhash):
        return False
    expected = compute_payhash(user_id, amount, tid, payment_key)
    # Both sides are ASCII hex of equal length here, so compare_digest is constant-time.
    return hmac.compare_digest(payhash.upper().encode("ascii"), expected.encode("ascii"))


def mask_payhash(payhash: str | None) -> str:
    """Enough to correlate log lines, never enough to replay."""
    if not payhash:
        return ""
    return payhash[:_VISIBLE_PREFIX] + "…"
