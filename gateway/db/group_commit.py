"""Group commit with failure isolation: one bad row never fails the others in its batch.

Concurrent callers each submit one item; a single flusher writes whatever has
gathered as one batch (one transaction, one fsync) and answers every caller.
When a batch write fails, the flusher cannot tell which item was at fault, so
it writes the items again one at a time: each caller then gets its own item's
outcome, and only the item that really fails raises. A database outage fails
the whole batch at once (retrying each row against a down server only delays
every answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from gateway.db.outage import is_database_outage

log = logging.getLogger("sekisho.db")
Item = TypeVar("Item")
Result = TypeVar("Result")
WriteBatch = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]


class GroupCommit(Generic[Item, Result]):
    """Batches concurrent single writes; ``failure()`` makes the error a failed caller gets."""

    def __init__(
        self, name: str, write: WriteBatch[Item, Result], failure: Callable[[], Exception]
    ) -> None:
        self._name = name
        self._write = write
        self._failure = failure
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def flusher(self) -> asyncio.Task[None] | None:
        """The running flush task, if any (to wait for it on shutdown)."""
        return self._flusher

    def pending(self) -> int:
        """Items waiting for the next batch."""
        return len(self._pending)

    async def submit(self, item: Item) -> Result:
        """Write ``item`` in the next batch and return its result (or raise its failure)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write_batch(batch)
        finally:
            self._flusher = None

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or is_database_outage(exc):
                log.error("%s: batch of %d not written: %s", self._name, len(batch), exc)
                _fail(batch, self._failure())
                return
            log.warning(
                "%s: batch of %d failed (%s); writing one by one", self._name, len(batch), exc
            )
            for one in batch:
                await self._write_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(batch: Sequence[tuple[object, asyncio.Future[Result]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
