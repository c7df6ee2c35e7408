"""Two-person requests settle once under concurrency, on SQLite and PostgreSQL: of officers
approving together, or sweeps expiring together, one wins and one entry is ledgered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from gateway.auth.identity import Identity
from gateway.documents.access import AccessRecorder
from gateway.documents.approvals import ApprovalBook
from gateway.documents.models import ApprovalRequest
from gateway.ledger.queued import QueuedLedger
from gateway.ledger.store import TortoiseLedgerStore
from tests.gateway.databases import database_url, opened
from tests.gateway.ledger_rows import ledger_entries

DOCUMENT = "0b8f6a52-8a1c-4a3e-9d55-5f1f3f0e0c11"


def officer(name: str) -> Identity:
    return Identity(kind="person", name=name, roles=frozenset({"officer"}), level="TOP SECRET")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class TrailRows:
    """Stands in for the access recorder (its rows need a serving ledger): keeps them."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    async def record_actor(self, actor: str, *, action: str, **_: object) -> None:
        self.rows.append((actor, action))


@pytest.fixture(params=["sqlite", "postgres"])
async def book(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ApprovalBook]:
    async with opened(database_url(request, tmp_path)):
        recorder = TrailRows()
        yield ApprovalBook(QueuedLedger("node-a"), cast(AccessRecorder, recorder), Clock())


async def claim(book: ApprovalBook, who: str) -> ApprovalRequest | None:
    """Store a pending request to destroy DOCUMENT (None when one is waiting)."""
    return await book.claim(
        officer(who),
        document_id=DOCUMENT,
        version=1,
        action="destroy",
        new_label=None,
        reason="",
        window=timedelta(minutes=10),
    )


async def open_request(book: ApprovalBook) -> ApprovalRequest:
    row = await claim(book, "olivia")
    assert row is not None
    await book.announce(row, None)
    return row


async def test_officers_approving_together_settle_it_once(book: ApprovalBook) -> None:
    row = await open_request(book)
    deciders = [officer(f"officer{n}") for n in range(8)]
    copies = [await ApprovalRequest.get(id=row.id) for _ in deciders]
    won = await asyncio.gather(
        *(book.settle(copy, who, "approved") for copy, who in zip(copies, deciders, strict=True))
    )
    assert sorted(won) == [False] * 7 + [True]
    assert len(await ledger_entries("approval.granted", request=row.id)) == 1
    assert (await ApprovalRequest.get(id=row.id)).status == "approved"


async def test_sweeps_expiring_together_ledger_it_once(book: ApprovalBook) -> None:
    row = await open_request(book)
    clock = cast(Clock, book.clock)
    clock.now += timedelta(minutes=11)
    counts = await asyncio.gather(*(book.expire_overdue() for _ in range(6)))
    assert sum(counts) == 1
    assert len(await ledger_entries("approval.expired", request=row.id)) == 1
    assert not await book.settle(await ApprovalRequest.get(id=row.id), officer("oscar"), "approved")


class LedgerDown(Exception):
    """The ledger's queue refused the entry."""


async def refuse_after_a_new_request(
    book: ApprovalBook, monkeypatch: pytest.MonkeyPatch
) -> list[ApprovalRequest | None]:
    """Make the next queued entry fail, after another officer stores a new request for the
    same document and action (the moment the old request stops being pending)."""
    claimed: list[ApprovalRequest | None] = []

    async def fails(store: TortoiseLedgerStore, entries: Sequence[bytes]) -> list[int]:
        claimed.append(await claim(book, "nadia"))
        raise LedgerDown("the ledger cannot take entries")

    monkeypatch.setattr(TortoiseLedgerStore, "enqueue", fails)
    return claimed


@pytest.mark.parametrize("ending", ["approved", "refused", "expired"])
async def test_a_decision_the_ledger_refuses_leaves_the_request_pending(
    book: ApprovalBook, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    """A decision or expiry is stored exactly when its entry is: when the entry cannot be
    queued, the ledger's error reaches the caller and the request is still the one pending
    for its document and action, even if another request was stored meanwhile."""
    row = await open_request(book)
    claimed = await refuse_after_a_new_request(book, monkeypatch)
    if ending == "expired":
        cast(Clock, book.clock).now += timedelta(minutes=11)
        ends = book.expire_overdue()
    else:
        ends = book.settle(row, officer("oscar"), ending)
    with pytest.raises(LedgerDown):
        await ends
    assert len(claimed) == 1
    monkeypatch.undo()
    pending = await ApprovalRequest.filter(document_id=DOCUMENT, status="pending")
    assert [r.id for r in pending] == [row.id]
    assert await ApprovalRequest.filter(document_id=DOCUMENT).count() == 1
    for entry_type in ("approval.granted", "approval.refused", "approval.expired"):
        assert await ledger_entries(entry_type, request=row.id) == []


class RolledBack(QueuedLedger):
    """A ledger found rolled back: it takes no entry."""

    def ensure_open(self) -> None:
        raise LedgerDown("the ledger was rolled back")


@pytest.mark.parametrize("ending", ["approved", "refused", "expired"])
async def test_a_rolled_back_ledger_takes_no_decision(book: ApprovalBook, ending: str) -> None:
    """Decisions queue their entry in their own transaction, not through the ledger
    service, and still fail closed when the ledger is rolled back or shutting down."""
    row = await open_request(book)
    clock = cast(Clock, book.clock)
    closed = ApprovalBook(RolledBack("node-a"), cast(AccessRecorder, TrailRows()), clock)
    if ending == "expired":
        clock.now += timedelta(minutes=11)
        ends = closed.expire_overdue()
    else:
        ends = closed.settle(row, officer("oscar"), ending)
    with pytest.raises(LedgerDown):
        await ends
    assert (await ApprovalRequest.get(id=row.id)).status == "pending"
    for entry_type in ("approval.granted", "approval.refused", "approval.expired"):
        assert await ledger_entries(entry_type, request=row.id) == []
