"""Small security primitives: constant-time token checks and signed links.

The return and cancel URLs we give Payletter carry the order_no and an HMAC over it, keyed
with the merchant's PAYMENT key. The buyer's browser brings them back, so a result posted
to /payletter/return can only speak for the order whose window we opened: a valid result
of one order replayed against another, or a forged failure, is refused.
"""

from __future__ import annotations

import hashlib
import hmac

LINK_SIGNATURE_HEX = 32  # 128 bits is plenty and keeps URLs under Payletter's 256 chars


def tokens_equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def token_in(given: str, accepted: tuple[str, ...]) -> bool:
    """Whether `given` is one of `accepted`, comparing with every one (constant time each)."""
    matched = False
    for token in accepted:
        matched |= tokens_equal(given, token)
    return matched


def sign_link(key: str, purpose: str, order_no: str) -> str:
    message = f"{purpose}\n{order_no}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:LINK_SIGNATURE_HEX]


def verify_link(key: str, purpose: str, order_no: str, signature: str | None) -> bool:
    if not signature or not signature.isascii():  # compare_digest refuses non-ASCII str
        return False
    return hmac.compare_digest(sign_link(key, purpose, order_no), signature.lower())
