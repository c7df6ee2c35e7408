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

A wait is bounded, as SQLite's busy handler is: when another process keeps the
lock longer than ``wait_seconds`` (stopped, or stuck in the middle of a write),
the writer gets SQLite's own "database is locked" error, which the API answers
with 503 and the CLI with one line, instead of waiting for ever.

The blocking ``flock`` calls run on one daemon thread per lock, in order, so a
wait that timed out or was cancelled still ends with the lock released (the
release is queued behind the wait it undoes), and a wait that never ends cannot
keep the process from exiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable

WAIT_SECONDS = 10.0
"""How long a writer waits for another process's turn: SQLite's busy timeout (db/setup.py)."""

_Operation = Callable[[], None]


class WriterLock:
    """An exclusive, fairly handed-over lock on ``path`` shared by every process using it."""

    def __init__(self, path: str, wait_seconds: float = WAIT_SECONDS) -> None:
        self._writer = _open(path)
        self._gate = _open(path + "-gate")
        self._wait_seconds = wait_seconds
        self._thread = _OperationThread()
        self.held = False

    async def acquire(self) -> None:
        """Wait for the writer lock (without blocking the event loop), at most ``wait_seconds``."""
        if self._thread.pending == 0 and _try(self._gate):
            if _try(self._writer):
                fcntl.flock(self._gate, fcntl.LOCK_UN)
                self.held = True
                return
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        waited = self._thread.submit(self._take_in_turn)
        try:
            await asyncio.wait_for(asyncio.shield(waited), self._wait_seconds)
        except TimeoutError:
            self._thread.submit(self._give_back)  # runs once the wait it undoes ends
            raise sqlite3.OperationalError(
                f"database is locked: another process kept the SQLite writer lock for more "
                f"than {self._wait_seconds:g} s"
            ) from None
        except asyncio.CancelledError:
            self._thread.submit(self._give_back)
            raise
        self.held = True

    def release(self) -> None:
        """Let the next writer in (a no-op when not held)."""
        if self.held:
            self.held = False
            if self._thread.pending == 0:
                fcntl.flock(self._writer, fcntl.LOCK_UN)
            else:
                self._thread.submit(self._give_back)

    def close(self) -> None:
        """Release and close the lock files (after any wait still queued, if it ever ends)."""
        self.release()
        self._thread.finish(self._close_files)

    def _take_in_turn(self) -> None:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._writer, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def _give_back(self) -> None:
        fcntl.flock(self._writer, fcntl.LOCK_UN)

    def _close_files(self) -> None:
        os.close(self._writer)
        os.close(self._gate)


class _OperationThread:
    """Runs blocking operations one after another on a daemon thread started on first use."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[_Operation, concurrent.futures.Future[None]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self.pending = 0  # operations submitted and not yet done (counted on the event loop)

    def submit(self, operation: _Operation) -> asyncio.Future[None]:
        """Queue ``operation``; the future is done when it has run."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-writer-lock", daemon=True
            )
            self._thread.start()
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put((operation, done))
        self.pending += 1
        future = asyncio.wrap_future(done)
        future.add_done_callback(self._done)
        return future

    def finish(self, last: _Operation) -> None:
        """Run ``last`` after everything queued, then stop; wait for it unless a wait is stuck."""
        if self._thread is None:
            last()
            return
        self._queue.put((last, concurrent.futures.Future()))
        self._queue.put((_stop, concurrent.futures.Future()))
        if self.pending == 0:
            self._thread.join()
        self._thread = None

    def _done(self, _: asyncio.Future[None]) -> None:
        self.pending -= 1

    def _run(self) -> None:
        while True:
            operation, done = self._queue.get()
            if operation is _stop:
                return
            try:
                operation()
            except BaseException as exc:  # handed to the waiter
                done.set_exception(exc)
            else:
                done.set_result(None)


def _stop() -> None:
    """The marker that ends an operation thread."""


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
