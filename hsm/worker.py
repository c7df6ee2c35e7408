"""The one thread that owns a token session, with an async bridge that batches calls.

python-pkcs11 initialises the module without locking callbacks, so SoftHSM runs
without its own mutexes: two threads inside the module at once can crash the
process. Every PKCS#11 call therefore runs on this one thread. Async callers
queue work; the thread drains whatever is queued in one go and hands the
results back to each event loop with a single wake-up per batch, so thousands
of concurrent ``await``s cost one thread hop per batch, not one per call.

Work that keeps the ledger moving (checkpoint and cosignature signing) is queued
as urgent: it runs before ordinary work still waiting, at most one ordinary call
(e.g. one signing API batch) after it was queued, however long the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class TokenThread:
    """Runs callables on one dedicated thread; safe to call from any thread or loop."""

    def __init__(self, name: str = "pkcs11") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[_Job] = deque()
        self._urgent: deque[_Job] = deque()
        self._lock = threading.Lock()
        self._drain_scheduled = False
        self._thread_ident: int | None = None
        self._closed = False
        # Learn the worker's identity so calls made on it run inline.
        self._executor.submit(self._remember_thread).result()

    def _remember_thread(self) -> None:
        self._thread_ident = threading.get_ident()

    @property
    def on_worker(self) -> bool:
        """True when the caller is already the owning thread."""
        return threading.get_ident() == self._thread_ident

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the owning thread and wait for it (for plain threads)."""
        if self.on_worker:
            return fn()
        if self._closed:
            raise RuntimeError("the token thread is closed")
        future: Future[T] = self._executor.submit(fn)
        return future.result()

    async def run(self, fn: Callable[[], T], *, urgent: bool = False) -> T:
        """Run ``fn`` on the owning thread from an event loop, batched with other calls;
        ``urgent`` work goes before ordinary work still waiting."""
        if self._closed:
            raise RuntimeError("the token thread is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            (self._urgent if urgent else self._pending).append(_Job(fn, future, loop))
            schedule = not self._drain_scheduled
            self._drain_scheduled = True
        if schedule:
            self._executor.submit(self._drain)
        return await future

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending and not self._urgent:
                    self._drain_scheduled = False
                    return
                urgent = list(self._urgent)
                self._urgent.clear()
                jobs = list(self._pending)
                self._pending.clear()
            if urgent:
                _hand_back(_run_all(urgent))
            outcomes: list[tuple[_Job, bool, Any]] = []
            for n, job in enumerate(jobs):
                outcomes += _run_all([job])
                if self._urgent:  # read without the lock: a late look costs one job
                    with self._lock:  # the rest wait for the next round, after the urgent
                        self._pending.extendleft(reversed(jobs[n + 1 :]))
                    break
            _hand_back(outcomes)

    def close(self) -> None:
        """Stop accepting work and let the thread finish what it has."""
        self._closed = True
        self._executor.shutdown(wait=True)


def _run_all(jobs: list[_Job]) -> list[tuple[_Job, bool, Any]]:
    outcomes: list[tuple[_Job, bool, Any]] = []
    for job in jobs:
        try:
            outcomes.append((job, True, job.fn()))
        except BaseException as exc:  # handed to the awaiting caller
            outcomes.append((job, False, exc))
    return outcomes


def _hand_back(outcomes: list[tuple[_Job, bool, Any]]) -> None:
    """Deliver results to each caller's loop with one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, results in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, results)
        except RuntimeError:  # that loop has closed; nobody is waiting
            continue


def _deliver(results: list[tuple[_Job, bool, Any]]) -> None:
    for job, ok, value in results:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
