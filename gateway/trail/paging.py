"""Newest-first keyset paging over a log table whose rows point at their ledger entry.

The access trail and the oversight log are both such tables: rows with an ``id``,
the ``ledger_queue_id`` their entry was queued under and, once known, its
``ledger_index``. One page, one export in chunks, and resolving indexes (written
back so the next read need not ask again) are the same for both.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from gateway.trail.query import MAX_LIMIT

log = logging.getLogger("sekisho.trail")


class IndexSource(Protocol):
    """Where the ledger indexes of queued entries are looked up."""

    async def indexes_for_queue_ids(self, queue_ids: Sequence[int]) -> dict[int, int]: ...


R = TypeVar("R")
"""A row (ORM model) with ``id``, ``ledger_queue_id`` and ``ledger_index``."""
Fetch = Callable[[int | None, int], Awaitable[list[R]]]
"""(cursor: ids below it, or None for the newest; how many) -> rows, newest first."""


async def one_page(fetch: Fetch[R], cursor: int | None, limit: int) -> tuple[list[R], int | None]:
    """Up to ``limit`` rows below ``cursor`` and the next page's cursor (None on the last)."""
    rows = await fetch(cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    last: Any = rows[-1] if rows else None
    return rows, last.id if more and last is not None else None


async def chunks(fetch: Fetch[R], cursor: int | None, limit: int | None) -> AsyncIterator[list[R]]:
    """Every row below ``cursor`` (at most ``limit`` if given), in chunks of MAX_LIMIT."""
    left = limit
    while left is None or left > 0:
        size = MAX_LIMIT if left is None else min(MAX_LIMIT, left)
        rows = await fetch(cursor, size)
        if not rows:
            return
        yield rows
        last: Any = rows[-1]
        cursor = last.id
        if left is not None:
            left -= len(rows)
        if len(rows) < size:
            return


async def resolve_indexes(rows: Sequence[R], indexes: IndexSource) -> None:
    """Fill in the ledger indexes not yet known; write them back (best effort)."""
    missing: list[Any] = [row for row in rows if getattr(row, "ledger_index", None) is None]
    if not missing:
        return
    found = await indexes.indexes_for_queue_ids([r.ledger_queue_id for r in missing])
    resolved = [row for row in missing if row.ledger_queue_id in found]
    for row in resolved:
        row.ledger_index = found[row.ledger_queue_id]
    if not resolved:
        return
    model: Any = type(resolved[0])
    try:
        await model.bulk_update(resolved, fields=["ledger_index"], batch_size=100)
    except Exception as exc:  # reads must not fail because the write-back did
        log.warning("could not store %d resolved ledger indexes: %s", len(resolved), exc)
