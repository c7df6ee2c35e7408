"""Ledger entries written in the same database transaction as the change they record.

Key, client, custody and two-person changes touch a few rows and must never leave a change
without its entry (or an entry without its change). They queue the entry
straight into ``ledger_pending`` through the caller's open transaction; the
sequencer that runs (here or in another process) integrates it. Going through
the serving process's group-committing ``LedgerService`` instead would queue
on its own task and connection, outside the transaction (and, on SQLite's one
connection, wait for the very transaction that waits for it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tortoise.queryset import UpdateQuery

from gateway.db.one_hop import update_of
from gateway.ledger.entries import make_entry
from gateway.ledger.store import TortoiseLedgerStore, queue_on_sqlite


class NodeLedger(Protocol):
    """The ledger of this node: its node name, and whether it takes entries now."""

    @property
    def node(self) -> str:
        """The node name written into entries."""
        ...

    def ensure_open(self) -> None:
        """Raise unless entries may be written now (not rolled back, not shutting down)."""
        ...


async def queue_entry(ledger: NodeLedger, entry_type: str, /, **fields: Any) -> None:
    """Queue one entry through the current transaction (call inside ``transaction()``).

    The entry does not pass through the ledger service's append, so its gate is
    asked here: a rolled-back or stopping ledger fails the caller's change.
    """
    await queue_entries(ledger, [make_entry(entry_type, ledger.node, **fields)])


async def queue_entries(ledger: NodeLedger, entries: Sequence[bytes]) -> list[int]:
    """Queue built entries through the current transaction, in one statement; their
    queue ids. The ledger's gate is asked first, as in :func:`queue_entry`."""
    ledger.ensure_open()
    return await TortoiseLedgerStore().enqueue(entries)


@dataclass(frozen=True)
class Claim:
    """A conditional UPDATE that must change exactly one row (e.g. a request still
    pending); ``lost`` is raised, and the whole transaction undone, when it changes none."""

    query: UpdateQuery
    lost: Exception


@dataclass(frozen=True)
class Together:
    """What lands in the transaction of a change, or not at all: an optional claim
    with entries queued before the change's own (``first``), and entries after them
    (``then``). The claim runs before the change, so a lost claim is what is reported."""

    claim: Claim | None = None
    first: Sequence[bytes] = ()
    then: Sequence[bytes] = ()

    def joined(self, other: Together) -> Together:
        """Both (one claim at most): this one's entries before the other's, in each place."""
        if self.claim is not None and other.claim is not None:
            raise ValueError("one change takes one claim")
        return Together(
            self.claim or other.claim, [*self.first, *other.first], [*self.then, *other.then]
        )

    async def write_first(self, ledger: NodeLedger) -> None:
        """Make the claim, queue ``first`` (inside ``transaction()``, before the change)."""
        if self.claim is not None and await self.claim.query != 1:
            raise self.claim.lost
        if self.first:
            await queue_entries(ledger, self.first)

    async def write_then(self, ledger: NodeLedger) -> None:
        """Queue ``then`` (inside the same transaction, after the change's entries)."""
        if self.then:
            await queue_entries(ledger, self.then)

    def on_sqlite(self, ledger: NodeLedger) -> tuple[SqliteWrite, SqliteWrite]:
        """The two steps for a one-hop SQLite transaction (the gate is asked now)."""
        if self.first or self.then:
            ledger.ensure_open()
        claim = None if self.claim is None else (update_of(self.claim.query), self.claim.lost)
        first, then = list(self.first), list(self.then)

        def write_first(db: sqlite3.Connection) -> None:
            if claim is not None and claim[0].run(db) != 1:
                raise claim[1]
            if first:
                queue_on_sqlite(first, db)

        def write_then(db: sqlite3.Connection) -> None:
            if then:
                queue_on_sqlite(then, db)

        return write_first, write_then


SqliteWrite = Callable[[sqlite3.Connection], None]
