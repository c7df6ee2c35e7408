"""The connection lock: the sequencer's turn comes before queued single writes."""

from __future__ import annotations

import asyncio

import pytest

from gateway.db.turn_lock import TurnLock


async def _take(lock: TurnLock, name: str, order: list[str], *, first: bool = False) -> None:
    await lock.acquire(first=first)
    order.append(name)
    await asyncio.sleep(0)
    lock.release()


async def test_a_first_waiter_goes_before_those_queued_earlier() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    waiting = [asyncio.create_task(_take(lock, f"write-{i}", order)) for i in range(3)]
    await asyncio.sleep(0)
    batch = asyncio.create_task(_take(lock, "batch", order, first=True))
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*waiting, batch)
    assert order == ["batch", "write-0", "write-1", "write-2"]
    assert not lock.locked()


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_lock_on() -> None:
    lock = TurnLock()
    order: list[str] = []
    await lock.acquire()
    doomed = asyncio.create_task(lock.acquire())
    after = asyncio.create_task(_take(lock, "after", order))
    await asyncio.sleep(0)
    lock.release()  # handed to the doomed waiter, which is cancelled before it runs
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await after
    assert order == ["after"] and not lock.locked()


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    lock = TurnLock()
    await lock.acquire()
    doomed = asyncio.create_task(lock.acquire(first=True))
    await asyncio.sleep(0)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
