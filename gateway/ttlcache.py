"""A small in-process cache whose entries expire, bounded in size.

Used where a process may reuse what it read for a few seconds: identities
behind bearer tokens, signing-key records, unwrapped data keys. Each user
states how stale an entry may be and clears what it changes itself.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """At most ``size`` entries, each for at most ``ttl`` seconds; ``ttl`` 0 keeps nothing.

    When full, the entry stored longest ago goes first.
    """

    def __init__(
        self, ttl: float, size: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The stored value, or None when absent or expired."""
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: K, value: V) -> None:
        """Store a value for ``ttl`` seconds."""
        if self.ttl <= 0:
            return
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        """Drop one entry, if present."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
