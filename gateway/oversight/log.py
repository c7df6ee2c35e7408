"""The oversight log: who looked at the trail, alerts, activity and the ledger, and how.

Every ``oversight.viewed`` entry has a row in ``oversight_event`` (written with the
entry, :mod:`gateway.oversight.record`); this reads them newest first, filtered by
actor, view and time, keyset-paged like the access trail, with ledger indexes
resolved from the ledger store as the trail resolves its own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.ledger.entries import utc_timestamp
from gateway.oversight.models import OversightEvent
from gateway.trail.paging import Fetch, IndexSource, chunks, one_page, resolve_indexes
from gateway.trail.query import TrailQuery, TrailQueryError, parse_query

PARAMETERS = ("person", "view", "from", "to", "limit", "cursor", "format")
COLUMNS = ("id", "at", "actor", "view", "filters", "node", "ledger_index")
_VIEW = re.compile(r"[a-z][a-z_.]{0,63}")


@dataclass(frozen=True)
class OversightQuery:
    """Filters (combined with AND) and paging; the shared ones are the trail's."""

    base: TrailQuery
    view: str | None = None


def parse_oversight_query(pairs: Iterable[tuple[str, str]]) -> OversightQuery:
    """Parse a query string; problems raise TrailQueryError naming the parameter."""
    view: str | None = None
    rest: list[tuple[str, str]] = []
    for name, value in pairs:
        if name not in PARAMETERS:
            raise TrailQueryError(name, f"unknown parameter (known: {', '.join(PARAMETERS)})")
        if name != "view":
            rest.append((name, value))
            continue
        if view is not None:
            raise TrailQueryError("view", "given more than once")
        view = value.strip()
        if not _VIEW.fullmatch(view):
            raise TrailQueryError("view", "expected a view name such as 'trail' or 'alerts'")
    return OversightQuery(parse_query(rest), view)


def query_filters(query: OversightQuery) -> dict[str, object]:
    """The filters of an oversight-log query, as its own oversight entry records them."""
    base = query.base
    return {
        "actor": base.actor,
        "view": query.view,
        "start": base.start,
        "end": base.end,
        "format": base.format,
        "limit": base.limit if base.limit_given else None,
    }


@dataclass(frozen=True)
class OversightAction:
    """One recorded view."""

    id: int
    at: datetime
    actor: str
    view: str
    filters: dict[str, str]
    node: str
    ledger_index: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the time in RFC 3339 UTC."""
        return {name: getattr(self, name) for name in COLUMNS} | {"at": utc_timestamp(self.at)}

    def filters_text(self) -> str:
        """The filters as ``name=value`` pairs separated by spaces (CSV and pages)."""
        return " ".join(f"{name}={value}" for name, value in sorted(self.filters.items()))


@dataclass(frozen=True)
class OversightPage:
    """One page; ``next_cursor`` is None on the last page."""

    actions: list[OversightAction]
    next_cursor: int | None


class OversightLog:
    """Queries the oversight table."""

    def __init__(self, indexes: IndexSource) -> None:
        self._indexes = indexes

    async def page(self, query: OversightQuery) -> OversightPage:
        """Up to ``limit`` actions older than ``cursor``, newest first."""
        rows, cursor = await one_page(self._fetch(query), query.base.cursor, query.base.limit)
        return OversightPage(await self._resolved(rows), cursor)

    async def export(self, query: OversightQuery) -> AsyncIterator[list[OversightAction]]:
        """Every matching action (at most ``limit`` if one was given), in chunks."""
        limit = query.base.limit if query.base.limit_given else None
        async for rows in chunks(self._fetch(query), query.base.cursor, limit):
            yield await self._resolved(rows)

    def _fetch(self, query: OversightQuery) -> Fetch[OversightEvent]:
        return lambda cursor, limit: self._rows(query, cursor, limit)

    async def _rows(
        self, query: OversightQuery, cursor: int | None, limit: int
    ) -> list[OversightEvent]:
        base = query.base
        filters: dict[str, Any] = {
            "actor": base.actor,
            "view": query.view,
            "node": base.node,
            "at__gte": base.start,
            "at__lt": base.end,
            "id__lt": cursor,
        }
        chosen = {name: value for name, value in filters.items() if value is not None}
        return await OversightEvent.filter(**chosen).order_by("-id").limit(limit)

    async def _resolved(self, rows: list[OversightEvent]) -> list[OversightAction]:
        await resolve_indexes(rows, self._indexes)
        return [
            OversightAction(
                id=row.id,
                at=row.at,
                actor=row.actor,
                view=row.view,
                filters={str(k): str(v) for k, v in dict(row.filters or {}).items()},
                node=row.node,
                ledger_index=row.ledger_index,
            )
            for row in rows
        ]
