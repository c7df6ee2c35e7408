"""Per-client token buckets (per process): ``rate_per_minute`` sustained, a minute's burst.

Each process keeps its own buckets. The N worker processes of one node
(``serve --workers N``) split a client's budget: each allows ``rate / N``
(rounded up), so the node as a whole allows the configured rate. Separate
nodes behind a load balancer still allow the rate each (docs/signing.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import TooManyRequests


@dataclass
class _Bucket:
    tokens: float
    updated: float
    per_minute: int


class RateLimiter:
    """Token buckets keyed by client; a rate of 0 means unlimited."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, share: int = 1) -> None:
        self._clock = clock
        self._share = max(1, share)
        self._buckets: dict[str, _Bucket] = {}

    def charge(self, client: str, per_minute: int, cost: int = 1) -> None:
        """Take ``cost`` tokens (at most a full bucket) or raise TooManyRequests."""
        if per_minute <= 0:
            return
        configured, per_minute = per_minute, max(1, math.ceil(per_minute / self._share))
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None or bucket.per_minute != per_minute:
            bucket = _Bucket(tokens=float(per_minute), updated=now, per_minute=per_minute)
            self._buckets[client] = bucket
        rate = per_minute / 60.0
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        needed = float(min(max(cost, 1), per_minute))
        if bucket.tokens >= needed:
            bucket.tokens -= needed
            return
        retry_after = max(1, math.ceil((needed - bucket.tokens) / rate))
        raise TooManyRequests(
            f"rate limit of {configured} requests per minute exceeded; retry in {retry_after} s",
            retry_after=retry_after,
        )
