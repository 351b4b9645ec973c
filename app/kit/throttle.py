"""Failed sign-ins and wrong bearer tokens, counted per source address, in memory.

A source that failed `limit` times within `window` seconds is refused (429) until the
oldest of those failures is `window` seconds old. Only failures are counted, and nothing
resets them: a source holding one valid token (the shop's) can't interleave guesses at
another (the operators') with successes.

Each process counts on its own and forgets on restart; with several workers or replicas,
the limit at the reverse proxy is the one that holds (docs/operations.md).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from app.kit.net import IPAddress

# Sources tracked at once. Each costs well under 1 KiB, so the limiter stays below ~10 MiB
# however many addresses fail; past the cap, the source that failed least recently is dropped.
MAX_SOURCES = 10_000


def source_key(address: IPAddress | None) -> str:
    """Whom a failure is counted against: an IPv4 address, or an IPv6 /64 (one host is
    usually given a whole /64, so counting its single addresses would count nothing)."""
    if address is None:
        return "unknown"  # e.g. a garbled X-Forwarded-For from a trusted proxy
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailureThrottle:
    """At most `limit` failures per source within a sliding `window` (seconds)."""

    def __init__(self, limit: int, window: float, *, max_sources: int = MAX_SOURCES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_sources = max_sources
        self.clock = clock
        # Per source its latest `limit` failure times; the least recently failing first.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        # Auth dependencies may run in the thread pool as well as on the event loop.
        self._lock = threading.Lock()

    def retry_after(self, source: str) -> int | None:
        """Whole seconds until `source` may try again; None if it is not blocked."""
        with self._lock:
            times = self._failures.get(source)
            if times is None or len(times) < self.limit:
                return None
            wait = times[0] + self.window - self.clock()
            return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, source: str) -> bool:
        """Count a failure of `source`; True if it is blocked from now on."""
        with self._lock:
            now = self.clock()
            self._forget_expired(now)
            times = self._failures.pop(source, None) or deque(maxlen=self.limit)
            times.append(now)
            self._failures[source] = times  # now the most recent
            while len(self._failures) > self.max_sources:
                self._failures.popitem(last=False)
            return len(times) == self.limit and now - times[0] < self.window

    def _forget_expired(self, now: float) -> None:
        # In least-recent order: stop at the first source with a failure still in the window.
        while self._failures:
            latest = next(iter(self._failures.values()))[-1]
            if now - latest < self.window:
                return
            self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)

    def __contains__(self, source: object) -> bool:
        return source in self._failures
