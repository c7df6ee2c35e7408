"""The expiring in-process cache behind identities, signing keys and data keys."""

from __future__ import annotations

from gateway.ttlcache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_until_it_expires() -> None:
    clock = Clock()
    cache: TtlCache[str, bytes] = TtlCache(ttl=10, clock=clock)
    cache.put("wrapped", b"k" * 32)
    clock.now += 9.9
    assert cache.get("wrapped") == b"k" * 32
    clock.now += 0.1
    assert cache.get("wrapped") is None
    assert len(cache) == 0


def test_entries_are_per_key() -> None:
    cache: TtlCache[tuple[str, bytes], bytes] = TtlCache(ttl=10)
    cache.put(("kek-1", b"wrapped"), b"a" * 32)
    assert cache.get(("kek-2", b"wrapped")) is None  # rewrapped under another KEK
    assert cache.get(("kek-1", b"wrapped!")) is None  # changed wrapped bytes


def test_pop_clear_and_the_size_bound() -> None:
    cache: TtlCache[bytes, bytes] = TtlCache(ttl=10, size=2)
    for n in range(3):
        cache.put(bytes([n]), bytes([n]) * 32)
    assert len(cache) == 2 and cache.get(b"\x00") is None  # the oldest went first
    cache.pop(b"\x01")
    assert cache.get(b"\x01") is None and cache.get(b"\x02") == b"\x02" * 32
    cache.clear()
    assert len(cache) == 0


def test_zero_seconds_keeps_nothing() -> None:
    cache: TtlCache[str, bytes] = TtlCache(ttl=0)
    cache.put("wrapped", b"k" * 32)
    assert cache.get("wrapped") is None and len(cache) == 0
