"""Ledger entries written in the same database transaction as the change they record.

Key and client management change a few rows and must never leave a change
without its entry (or an entry without its change). They queue the entry
straight into ``ledger_pending`` through the caller's open transaction; the
sequencer that runs (here or in another process) integrates it. Going through
the serving process's group-committing ``LedgerService`` instead would queue
on its own task and connection, outside the transaction (and, on SQLite's one
connection, wait for the very transaction that waits for it).
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.ledger.entries import make_entry
from gateway.ledger.store import TortoiseLedgerStore


class NodeLedger(Protocol):
    """The ledger of this node; only its node name is used here."""

    @property
    def node(self) -> str:
        """The node name written into entries."""
        ...


async def queue_entry(ledger: NodeLedger, entry_type: str, /, **fields: Any) -> None:
    """Queue one entry through the current transaction (call inside ``transaction()``)."""
    await TortoiseLedgerStore().enqueue([make_entry(entry_type, ledger.node, **fields)])
