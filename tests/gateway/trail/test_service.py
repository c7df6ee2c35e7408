"""The trail service on SQLite and PostgreSQL: filters, keyset pages, exports, ledger indexes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.documents.models import AccessEvent
from gateway.trail.query import TrailQuery, parse_query
from gateway.trail.service import TrailService
from tests.gateway.databases import database_url, opened

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
DOC_A = "0b5e0f5c-3f43-4c56-9a0e-1d2b3c4d5e6f"
DOC_B = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"


class FakeIndexes:
    """Ledger indexes known so far, and which queue ids were asked for."""

    def __init__(self, known: dict[int, int] | None = None) -> None:
        self.known = known or {}
        self.asked: list[list[int]] = []

    async def indexes_for_queue_ids(self, queue_ids: Sequence[int]) -> dict[int, int]:
        self.asked.append(sorted(queue_ids))
        return {q: self.known[q] for q in queue_ids if q in self.known}


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[None]:
    async with opened(database_url(request, tmp_path)):
        yield


async def add_event(n: int, **fields: Any) -> AccessEvent:
    values: dict[str, Any] = {
        "at": T0 + timedelta(minutes=n),
        "actor": "person:alice",
        "document_id": DOC_A,
        "version": 1,
        "action": "download",
        "outcome": "granted",
        "reason": "granted",
        "source": "192.0.2.1",
        "node": "node-a",
        "ledger_queue_id": 1000 + n,
    }
    values.update(fields)
    return await AccessEvent.create(**values)


async def ids(service: TrailService, pairs: list[tuple[str, str]]) -> list[int]:
    return [e.id for e in (await service.page(parse_query([*pairs, ("limit", "500")]))).events]


async def test_filters_combine(database: None) -> None:
    alice = await add_event(0)
    bob = await add_event(1, actor="person:bob", outcome="denied", reason="compartments")
    other_doc = await add_event(2, document_id=DOC_B, action="metadata")
    other_node = await add_event(3, node="node-b", source="198.51.100.9")
    client = await add_event(4, actor="client:billing", document_id=None, version=None)
    service = TrailService(FakeIndexes())
    everything = [client.id, other_node.id, other_doc.id, bob.id, alice.id]
    assert await ids(service, []) == everything  # newest first
    assert await ids(service, [("person", "bob")]) == [bob.id]
    assert await ids(service, [("person", "client:billing")]) == [client.id]
    assert await ids(service, [("document", DOC_B)]) == [other_doc.id]
    assert await ids(service, [("outcome", "denied")]) == [bob.id]
    assert await ids(service, [("action", "metadata")]) == [other_doc.id]
    assert await ids(service, [("node", "node-b")]) == [other_node.id]
    assert await ids(service, [("person", "alice"), ("document", DOC_B)]) == [other_doc.id]
    at = "2026-03-01T08:01:00Z"
    to = "2026-03-01T08:03:00Z"
    assert await ids(service, [("from", at)]) == everything[:4]  # from is inclusive
    assert await ids(service, [("from", at), ("to", to)]) == [other_doc.id, bob.id]  # to exclusive
    assert await ids(service, [("from", "2026-03-01T10:01:00+02:00")]) == everything[:4]
    assert await ids(service, [("person", "nobody")]) == []


async def test_keyset_pages_see_every_event_once_while_new_ones_arrive(database: None) -> None:
    rows = [await add_event(n) for n in range(23)]
    service = TrailService(FakeIndexes())
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    while True:
        page = await service.page(TrailQuery(limit=5, cursor=cursor))
        seen.extend(e.id for e in page.events)
        pages += 1
        if pages == 2:
            await add_event(99)  # arrives mid-way; belongs before the first page
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 5
    assert seen == sorted((r.id for r in rows), reverse=True)
    exact = await service.page(TrailQuery(limit=24))
    assert len(exact.events) == 24 and exact.next_cursor is None


async def test_missing_ledger_indexes_are_resolved_once_and_stored(database: None) -> None:
    first = await add_event(1)
    second = await add_event(2)
    pending = await add_event(3)
    known = await add_event(4, ledger_index=7)
    indexes = FakeIndexes({first.ledger_queue_id: 40, second.ledger_queue_id: 41})
    service = TrailService(indexes)
    events = {e.id: e for e in (await service.page(TrailQuery())).events}
    assert events[first.id].ledger_index == 40 and events[second.id].ledger_index == 41
    assert events[pending.id].ledger_index is None and events[known.id].ledger_index == 7
    assert indexes.asked == [sorted([first.ledger_queue_id, second.ledger_queue_id, 1003])]
    stored = await AccessEvent.get(id=first.id)
    assert stored.ledger_index == 40
    await service.page(TrailQuery())
    assert indexes.asked[-1] == [pending.ledger_queue_id]  # only the unresolved one again


async def test_exports_stream_in_chunks(database: None) -> None:
    await AccessEvent.bulk_create(
        [
            AccessEvent(
                at=T0,
                actor=f"person:p{n % 3}",
                action="download",
                outcome="granted",
                node="node-a",
                ledger_queue_id=n,
            )
            for n in range(1203)
        ]
    )
    service = TrailService(FakeIndexes())
    sizes = [len(chunk) async for chunk in service.export(TrailQuery(format="csv"))]
    assert sizes == [500, 500, 203]
    limited = TrailQuery(format="csv", limit=7, limit_given=True)
    assert [len(chunk) async for chunk in service.export(limited)] == [7]
    only_p1 = parse_query([("person", "p1"), ("format", "csv")])
    assert sum([len(chunk) async for chunk in service.export(only_p1)]) == 401
