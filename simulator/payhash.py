"""payhash as the vendor page defines it: sha256(user_id + amount + tid + PAYMENT key)."""

from __future__ import annotations

import hashlib


def compute_payhash(user_id: str, amount: int, tid: str, payment_key: str) -> str:
    # The amount is the integer in plain decimal ("1000"); the vendor sample is upper-case hex.
    message = f"{user_id}{int(amount)}{tid}{payment_key}"
    return hashlib.sha256(message.encode("utf-8")).hexdigest().upper()


def corrupt_payhash(payhash: str) -> str:
    """A well-formed but wrong payhash (for the `bad_payhash` fault)."""
    return hashlib.sha256(f"tampered:{payhash}".encode()).hexdigest().upper()
