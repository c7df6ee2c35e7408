"""Reading the access trail: filtered, newest first, keyset-paged, with ledger indexes.

Trail rows are written when a decision is made, before its ledger entry is
integrated, so a row may not know its ledger index yet. Reads resolve missing
indexes from the ledger store by queue id and write them back, so each row
is resolved at most once after integration.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.documents.models import AccessEvent
from gateway.ledger.entries import utc_timestamp
from gateway.trail.query import MAX_LIMIT, TrailQuery

log = logging.getLogger("sekisho.trail")
COLUMNS = (
    "id",
    "at",
    "actor",
    "document_id",
    "version",
    "action",
    "outcome",
    "reason",
    "source",
    "node",
    "ledger_index",
)


class IndexSource(Protocol):
    """Where integrated entries landed (the ledger store)."""

    async def indexes_for_queue_ids(self, queue_ids: Sequence[int]) -> dict[int, int]:
        """Ledger index by queue id, for the entries already integrated."""
        ...


@dataclass(frozen=True)
class TrailEvent:
    """One access decision as officers see it."""

    id: int
    at: datetime
    actor: str
    document_id: str | None
    version: int | None
    action: str
    outcome: str
    reason: str
    source: str
    node: str
    ledger_index: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the time in RFC 3339 UTC."""
        return {name: getattr(self, name) for name in COLUMNS} | {"at": utc_timestamp(self.at)}


@dataclass(frozen=True)
class TrailPage:
    """One page; ``next_cursor`` is None on the last page."""

    events: list[TrailEvent]
    next_cursor: int | None


class TrailService:
    """Queries the trail table."""

    def __init__(self, indexes: IndexSource) -> None:
        self._indexes = indexes

    async def page(self, query: TrailQuery) -> TrailPage:
        """Up to ``query.limit`` events older than ``query.cursor``, newest first."""
        rows = await self._rows(query, query.cursor, query.limit + 1)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        events = await self._resolved(rows)
        return TrailPage(events, rows[-1].id if more and rows else None)

    async def export(self, query: TrailQuery) -> AsyncIterator[list[TrailEvent]]:
        """Every matching event (at most ``limit`` if one was given), in chunks."""
        left = query.limit if query.limit_given else None
        cursor = query.cursor
        while left is None or left > 0:
            size = MAX_LIMIT if left is None else min(MAX_LIMIT, left)
            rows = await self._rows(query, cursor, size)
            if not rows:
                return
            yield await self._resolved(rows)
            cursor = rows[-1].id
            if left is not None:
                left -= len(rows)
            if len(rows) < size:
                return

    async def _rows(self, query: TrailQuery, cursor: int | None, limit: int) -> list[AccessEvent]:
        filters: dict[str, Any] = {
            "actor": query.actor,
            "document_id": query.document,
            "outcome": query.outcome,
            "action": query.action,
            "node": query.node,
            "at__gte": query.start,
            "at__lt": query.end,
            "id__lt": cursor,
        }
        chosen = {name: value for name, value in filters.items() if value is not None}
        return await AccessEvent.filter(**chosen).order_by("-id").limit(limit)

    async def _resolved(self, rows: list[AccessEvent]) -> list[TrailEvent]:
        missing = [row for row in rows if row.ledger_index is None]
        if missing:
            found = await self._indexes.indexes_for_queue_ids([r.ledger_queue_id for r in missing])
            resolved = [row for row in missing if row.ledger_queue_id in found]
            for row in resolved:
                row.ledger_index = found[row.ledger_queue_id]
            if resolved:
                await _persist(resolved)
        return [_event(row) for row in rows]


async def _persist(rows: list[AccessEvent]) -> None:
    """Write resolved indexes back; a failure only means resolving again next time."""
    try:
        await AccessEvent.bulk_update(rows, fields=["ledger_index"], batch_size=100)
    except Exception as exc:  # reads must not fail because the write-back did
        log.warning("could not store %d resolved ledger indexes: %s", len(rows), exc)


def _event(row: AccessEvent) -> TrailEvent:
    return TrailEvent(
        id=row.id,
        at=row.at,
        actor=row.actor,
        document_id=row.document_id,
        version=row.version,
        action=row.action,
        outcome=row.outcome,
        reason=row.reason,
        source=row.source,
        node=row.node,
        ledger_index=row.ledger_index,
    )
