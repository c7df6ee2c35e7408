"""Reading the access trail: filtered, newest first, keyset-paged, with ledger indexes.

Trail rows are written when a decision is made, before its ledger entry is
integrated, so a row may not know its ledger index yet. Reads resolve missing
indexes from the ledger store by queue id and write them back, so each row
is resolved at most once after integration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.documents.models import AccessEvent
from gateway.ledger.entries import utc_timestamp
from gateway.trail.paging import Fetch, IndexSource, chunks, one_page, resolve_indexes
from gateway.trail.query import TrailQuery

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
        rows, cursor = await one_page(self._fetch(query), query.cursor, query.limit)
        return TrailPage(await self._resolved(rows), cursor)

    async def export(self, query: TrailQuery) -> AsyncIterator[list[TrailEvent]]:
        """Every matching event (at most ``limit`` if one was given), in chunks."""
        limit = query.limit if query.limit_given else None
        async for rows in chunks(self._fetch(query), query.cursor, limit):
            yield await self._resolved(rows)

    def _fetch(self, query: TrailQuery) -> Fetch[AccessEvent]:
        return lambda cursor, limit: self._rows(query, cursor, limit)

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
        await resolve_indexes(rows, self._indexes)
        return [_event(row) for row in rows]


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
