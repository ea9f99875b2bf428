"""Token-bucket rate limits per caller and per user (429 with Retry-After when spent).

A bucket holds up to `burst` units and refills at `rate` units per second; a request costs one
unit, a POST /v1/events one unit per event. Buckets live in memory (one service process); idle
ones are dropped once full again, so memory follows the number of active callers.
"""

from __future__ import annotations

import dataclasses
import math
import threading


@dataclasses.dataclass(frozen=True)
class Rate:
    """Attributes:
    rate: units refilled per second.
    burst: most units a bucket holds (what a caller may spend at once).
    """

    rate: float
    burst: float

    def __post_init__(self):
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got {self}.")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """`"100/s"` (burst = 1 s of rate) or `"100/s,burst=1000"`."""
        head, _, tail = text.partition(",")
        number, _, unit = head.partition("/")
        if unit.strip() != "s" or (tail and not tail.strip().startswith("burst=")):
            raise ValueError(f"rate limit {text!r}: write it as N/s or N/s,burst=M (e.g. 100/s,burst=1000).")
        rate = float(number)
        burst = float(tail.split("=", 1)[1]) if tail else max(rate, 1.0)
        return cls(rate, burst)


class RateLimiter:
    """Buckets keyed by string, one `Rate` for all of them; thread-safe."""

    def __init__(self, limit: Rate, max_buckets: int = 100_000):
        self.limit = limit
        self._max_buckets = max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (units, when)
        self._lock = threading.Lock()

    def charge(self, key: str, cost: float, now: float) -> float:
        """Takes `cost` units from `key`'s bucket; returns 0 when taken, else the seconds until
        they would be there (nothing is taken then). A cost over the burst is charged as the
        burst, so a single large request is possible from a full bucket."""
        cost = min(cost, self.limit.burst)
        with self._lock:
            units, when = self._buckets.get(key, (self.limit.burst, now))
            units = min(self.limit.burst, units + (now - when) * self.limit.rate)
            if units < cost:
                self._buckets[key] = (units, now)
                return (cost - units) / self.limit.rate
            self._buckets[key] = (units - cost, now)
            if len(self._buckets) > self._max_buckets:
                self._drop_full(now)
            return 0.0

    def _drop_full(self, now: float) -> None:
        # A full bucket is the same as no bucket: forgetting it changes nothing.
        burst, rate = self.limit.burst, self.limit.rate
        for key in [k for k, (u, w) in self._buckets.items() if u + (now - w) * rate >= burst]:
            del self._buckets[key]


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
