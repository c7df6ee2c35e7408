"""The SQLite connection's lock, with a turn at the head of the queue for the sequencer.

Under mixed load every write takes its turn on the process's one connection. The
sequencer's batch answers every request waiting for integration at once (reads
with an access entry, signatures, uploads), so it waits at the head of the queue
instead of behind single-row writes: one turn of it ends many requests' waits.
The lock is handed to the next waiter on release (no barging), first-in first-out
within each of the two queues.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Literal


class TurnLock(asyncio.Lock):
    """An asyncio lock whose ``acquire(first=True)`` queues ahead of ordinary waiters."""

    def __init__(self) -> None:
        super().__init__()
        self._held = False
        self._first: collections.deque[asyncio.Future[None]] = collections.deque()
        self._rest: collections.deque[asyncio.Future[None]] = collections.deque()

    def locked(self) -> bool:
        """True while someone holds the lock."""
        return self._held

    async def acquire(self, *, first: bool = False) -> Literal[True]:
        """Wait for the lock; ``first`` waits ahead of every ordinary waiter."""
        if not self._held:
            self._held = True
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._first if first else self._rest
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over, then cancelled
                self.release()
            elif waiter in queue:
                queue.remove(waiter)
            raise
        return True  # handed over by release(): still held

    def release(self) -> None:
        """Hand the lock to the next waiter, or free it."""
        if not self._held:
            raise RuntimeError("the lock is not held")
        for queue in (self._first, self._rest):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False
