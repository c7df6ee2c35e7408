"""The short-lived cache of unwrapped data keys."""

from __future__ import annotations

from gateway.documents.keycache import DataKeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_reused_until_it_expires() -> None:
    clock = Clock()
    cache = DataKeyCache(ttl=10, clock=clock)
    cache.put("kek-1", b"wrapped", b"k" * 32)
    clock.now += 9.9
    assert cache.get("kek-1", b"wrapped") == b"k" * 32
    clock.now += 0.1
    assert cache.get("kek-1", b"wrapped") is None
    assert len(cache) == 0


def test_entries_are_per_kek_and_wrapped_bytes() -> None:
    cache = DataKeyCache(ttl=10)
    cache.put("kek-1", b"wrapped", b"a" * 32)
    assert cache.get("kek-2", b"wrapped") is None  # rewrapped under another KEK
    assert cache.get("kek-1", b"wrapped!") is None  # changed wrapped bytes


def test_forget_and_the_size_bound() -> None:
    cache = DataKeyCache(ttl=10, size=2)
    for n in range(3):
        cache.put("kek", bytes([n]), bytes([n]) * 32)
    assert len(cache) == 2 and cache.get("kek", b"\x00") is None  # the oldest went first
    cache.forget("kek", b"\x01")
    assert cache.get("kek", b"\x01") is None and cache.get("kek", b"\x02") == b"\x02" * 32


def test_zero_seconds_turns_it_off() -> None:
    cache = DataKeyCache(ttl=0)
    cache.put("kek", b"wrapped", b"k" * 32)
    assert cache.get("kek", b"wrapped") is None and len(cache) == 0
