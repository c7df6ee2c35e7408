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
import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator

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
        if self._thread.pending == 0 and self._try_both():
            self.held = True
            return
        waited = self._thread.submit(self._take_in_turn)
        try:
            await asyncio.wait_for(asyncio.shield(waited), self._wait_seconds)
        except TimeoutError:
            self._thread.submit(self._give_back)  # runs once the wait it undoes ends
            raise _locked_error(self._wait_seconds) from None
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

    @contextlib.contextmanager
    def held_on_this_thread(self) -> Iterator[None]:
        """Hold the lock around a block run on a worker thread (never the event loop's).

        The wait (at most ``wait_seconds``), the block and the release all happen
        off the event loop, so the lock is never held while a busy loop gets round
        to the next step: another process waits for the write itself, no longer.
        The caller's own turn (its connection lock) keeps two holders in this
        process apart.
        """
        if not (self._thread.pending == 0 and self._try_both()):
            waited = self._thread.submit_here(self._take_in_turn)
            try:
                waited.result(timeout=self._wait_seconds)
            except concurrent.futures.TimeoutError:
                self._thread.submit_here(self._give_back)  # runs once the wait it undoes ends
                raise _locked_error(self._wait_seconds) from None
        try:
            yield
        finally:
            self._give_back()

    def _try_both(self) -> bool:
        if not _try(self._gate):
            return False
        taken = _try(self._writer)
        fcntl.flock(self._gate, fcntl.LOCK_UN)
        return taken

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
        self._counting = threading.Lock()
        self.pending = 0  # operations submitted and not yet done

    def submit(self, operation: _Operation) -> asyncio.Future[None]:
        """Queue ``operation`` from the event loop; the future is done when it has run."""
        return asyncio.wrap_future(self.submit_here(operation))

    def submit_here(self, operation: _Operation) -> concurrent.futures.Future[None]:
        """Queue ``operation`` from any thread; the future is done when it has run."""
        with self._counting:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sqlite-writer-lock", daemon=True
                )
                self._thread.start()
            self.pending += 1
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        done.add_done_callback(self._done)
        self._queue.put((operation, done))
        return done

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

    def _done(self, _: concurrent.futures.Future[None]) -> None:
        with self._counting:
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


def _locked_error(wait_seconds: float) -> sqlite3.OperationalError:
    return sqlite3.OperationalError(
        f"database is locked: another process kept the SQLite writer lock for more "
        f"than {wait_seconds:g} s"
    )


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
