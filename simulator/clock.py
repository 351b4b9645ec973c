"""The simulator's settable clock, and Korea-time formatting.

Payletter's zone-less dates and times are Korea time (UTC+9, no DST), so every
business rule (cancel windows, the transaction list's `date`) is judged in KST.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

KST = timezone(timedelta(hours=9), name="KST")


class SimClock:
    """Real time by default; tests can pin it (frozen) or start it from a chosen instant."""

    def __init__(self) -> None:
        self._anchor: datetime | None = None
        self._anchor_monotonic = 0.0
        self._ticking = False

    def now(self) -> datetime:
        if self._anchor is None:
            return datetime.now(UTC)
        if not self._ticking:
            return self._anchor
        return self._anchor + timedelta(seconds=time.monotonic() - self._anchor_monotonic)

    def set(self, instant: datetime | None, *, ticking: bool = False) -> None:
        if instant is not None and instant.utcoffset() is None:
            raise ValueError("the clock needs a timezone-aware instant")
        self._anchor = instant.astimezone(UTC) if instant is not None else None
        self._anchor_monotonic = time.monotonic()
        self._ticking = ticking

    @property
    def is_real(self) -> bool:
        return self._anchor is None

    @property
    def is_ticking(self) -> bool:
        return self._anchor is None or self._ticking

    def reset(self) -> None:
        self.set(None)


def to_kst(instant: datetime) -> datetime:
    return instant.astimezone(KST)


def kst_date(instant: datetime) -> date:
    return to_kst(instant).date()


def format_kst(instant: datetime) -> str:
    """Payletter's `transaction_date` / `cancel_date` shape: 'YYYY-MM-DD HH:MM:SS', KST."""
    return to_kst(instant).strftime("%Y-%m-%d %H:%M:%S")
