"""read_ahead: every chunk in order, bounded run-ahead, errors in order, clean early exit."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.documents.readahead import read_ahead


class Source:
    """Numbered chunks; records how far the reading thread got."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.produced = 0
        self.taken = 0
        self.most_ahead = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def next_chunk(self) -> bytes:
        self.threads.add(threading.current_thread().name)
        if self.produced == self.fail_at:
            raise OSError("disk error")
        with self.lock:
            self.produced += 1
            self.most_ahead = max(self.most_ahead, self.produced - self.taken)
        return self.produced.to_bytes(4, "big")

    def done(self) -> bool:
        return self.produced >= self.count

    def took(self) -> None:
        with self.lock:
            self.taken += 1


async def test_every_chunk_in_order_never_more_than_depth_ahead() -> None:
    source = Source(50)
    seen = []
    async for chunk in read_ahead(source.next_chunk, source.done, depth=3):
        source.took()
        seen.append(int.from_bytes(chunk, "big"))
        await asyncio.sleep(0)  # a slow consumer: the thread runs ahead, up to the bound
    assert seen == list(range(1, 51))
    assert 1 <= source.most_ahead <= 4  # three waiting plus the one being handed over
    assert source.threads == {"sekisho-read-ahead"}


async def collect(source: Source, into: list[int]) -> None:
    async for chunk in read_ahead(source.next_chunk, source.done, depth=2):
        into.append(int.from_bytes(chunk, "big"))


async def test_an_error_arrives_after_the_chunks_before_it() -> None:
    source = Source(10, fail_at=4)
    seen: list[int] = []
    with pytest.raises(OSError, match="disk error"):
        await collect(source, seen)
    assert seen == [1, 2, 3, 4]


async def test_leaving_early_stops_the_thread() -> None:
    before = set(threading.enumerate())  # other tests of this worker may read ahead too
    source = Source(10_000)
    stream = read_ahead(source.next_chunk, source.done, depth=2)
    async for _ in stream:
        break
    await stream.aclose()
    produced = source.produced
    assert produced < 10_000
    ours = [t for t in threading.enumerate() if t.name == "sekisho-read-ahead" and t not in before]
    for thread in ours:  # its work is done once aclose returns; it is ending, not reading
        thread.join(timeout=30)
        assert not thread.is_alive()
    await asyncio.sleep(0.05)
    assert source.produced == produced  # nothing more is read once it has stopped
