"""Ledgering from outside the serving process (the CLI), and what services need of a ledger.

A CLI command is not inside the running server, so it cannot hand entries to
the server's group-committing :class:`~gateway.ledger.service.LedgerService`.
It queues them durably in the shared ``ledger_pending`` table instead; the
sequencer that is running (or the next one to start) integrates them.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.ledger.entries import make_entry
from gateway.ledger.store import LedgerStore, TortoiseLedgerStore


class EntryRecorder(Protocol):
    """Anything that durably records typed entries: the ledger service or a queue."""

    @property
    def node(self) -> str:
        """The node name written into entries."""
        ...

    async def record(self, entry_type: str, /, **fields: Any) -> object:
        """Build and durably queue one entry; raises when it cannot."""
        ...


class QueuedLedger:
    """Records entries straight into the durable queue (needs the database open)."""

    def __init__(self, node: str, store: LedgerStore | None = None) -> None:
        self._node = node
        self._store = store or TortoiseLedgerStore()

    @property
    def node(self) -> str:
        """The node name written into entries."""
        return self._node

    def ensure_open(self) -> None:
        """A queue is always open: the sequencer checks the history when it integrates."""

    async def record(self, entry_type: str, /, **fields: Any) -> int:
        """Queue one entry; returns its queue id."""
        ids = await self._store.enqueue([make_entry(entry_type, self._node, **fields)])
        return ids[0]
