"""One SQLite writer at a time across processes, handed over in turn.

SQLite lets one connection write at a time. A connection that finds the write
lock taken waits in SQLite's busy handler, which sleeps and retries (1, 2, 5,
... then 100 ms between tries). Between two gateway workers that both write
often, the waiting one keeps waking to a lock taken again: a measured upload
waited 5 s while another worker's reads and anchors were ledgered.

:class:`WriterLock` takes an ``flock`` on a file beside the database before a
write instead. A waiter blocks in the kernel and wakes as soon as the lock is
free, and a second lock, the *gate*, makes the hand-over fair: a process waits
for the writer lock while holding the gate, so the process that just released
it must pass the gate, and so wait for its turn, before it can write again.

The blocking ``flock`` calls run on one thread per lock, in order, so a wait
cancelled midway still ends with the lock released (the release is queued
behind the wait it undoes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
from collections.abc import Callable


class WriterLock:
    """An exclusive, fairly handed-over lock on ``path`` shared by every process using it."""

    def __init__(self, path: str) -> None:
        self._writer = _open(path)
        self._gate = _open(path + "-gate")
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "sqlite-writer-lock")
        self._queued = 0  # blocking operations submitted to the thread and not yet done
        self.held = False

    async def acquire(self) -> None:
        """Wait for the writer lock (without blocking the event loop)."""
        if self._queued == 0 and _try(self._gate):
            if _try(self._writer):
                fcntl.flock(self._gate, fcntl.LOCK_UN)
                self.held = True
                return
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        waited = self._submit(self._take_in_turn)
        try:
            await asyncio.shield(waited)
        except asyncio.CancelledError:
            self._submit(self._give_back)  # runs after the wait it undoes
            raise
        self.held = True

    def release(self) -> None:
        """Let the next writer in (a no-op when not held)."""
        if self.held:
            self.held = False
            if self._queued == 0:
                fcntl.flock(self._writer, fcntl.LOCK_UN)
            else:
                self._submit(self._give_back)

    def close(self) -> None:
        """Release and close the lock files."""
        self.release()
        self._thread.shutdown(wait=True)
        os.close(self._writer)
        os.close(self._gate)

    def _submit(self, operation: Callable[[], None]) -> asyncio.Future[None]:
        self._queued += 1
        future = asyncio.wrap_future(self._thread.submit(operation))
        future.add_done_callback(self._done)
        return future

    def _done(self, _: asyncio.Future[None]) -> None:
        self._queued -= 1

    def _take_in_turn(self) -> None:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._writer, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def _give_back(self) -> None:
        fcntl.flock(self._writer, fcntl.LOCK_UN)


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
