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

from collections.abc import Sequence
from typing import Any, Protocol

from gateway.ledger.entries import make_entry
from gateway.ledger.store import TortoiseLedgerStore


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
