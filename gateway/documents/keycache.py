"""A short-lived, bounded cache of unwrapped data keys.

Unwrapping on the token costs three PKCS#11 calls per read; repeated reads of
the same version within ``ttl`` seconds reuse the key instead. Entries are
keyed by the KEK label and the wrapped key bytes, so a rewrapped or destroyed
version never hits an old entry, and a read still checks the version row
(destroyed or not) before any lookup. ``ttl`` 0 turns the cache off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class DataKeyCache:
    """Unwrapped data keys for at most ``ttl`` seconds, at most ``size`` of them."""

    def __init__(
        self, ttl: float, size: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._keys: OrderedDict[tuple[str, bytes], tuple[float, bytes]] = OrderedDict()

    def get(self, kek_label: str, wrapped: bytes) -> bytes | None:
        """The cached key, or None when absent or expired."""
        if self._ttl <= 0:
            return None
        found = self._keys.get((kek_label, wrapped))
        if found is None:
            return None
        expires, key = found
        if expires <= self._clock():
            del self._keys[(kek_label, wrapped)]
            return None
        return key

    def put(self, kek_label: str, wrapped: bytes, key: bytes) -> None:
        """Remember a freshly unwrapped key."""
        if self._ttl <= 0:
            return
        self._keys[(kek_label, wrapped)] = (self._clock() + self._ttl, key)
        self._keys.move_to_end((kek_label, wrapped))
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def forget(self, kek_label: str, wrapped: bytes) -> None:
        """Drop one key (its version is being destroyed)."""
        self._keys.pop((kek_label, wrapped), None)

    def __len__(self) -> int:
        return len(self._keys)
