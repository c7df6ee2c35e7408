"""A gateway-like process that appends ledger entries, for multi-process and crash tests.

Run as ``python -m tests.ledger_appender COUNT ACK_FILE`` with the node's
``SEKISHO_*`` environment. Each entry is appended; once ``append`` returns
(durably queued) a line ``queued <queue_id> <sha256-of-entry>`` is written and
flushed; once integrated, ``integrated <queue_id> <index>``. With COUNT 0 it
only runs the sequencer until no entry is pending, then exits.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from typing import TextIO

from gateway.config import load_settings
from gateway.db.setup import close_database, open_database
from gateway.ledger.service import LedgerService
from gateway.ledger.wiring import build_ledger
from gateway.node_token import open_node_token


async def append_one(ledger: LedgerService, n: int, ack: TextIO) -> None:
    """Append entry ``n`` and acknowledge it twice: queued, then integrated."""
    entry_digest = hashlib.sha256(f"{os.getpid()}-{n}".encode()).hexdigest()
    ticket = await ledger.record("record.anchored", client=f"p{os.getpid()}", digest=entry_digest)
    data_line = f"queued {ticket.queue_id} {entry_digest}\n"
    ack.write(data_line)
    ack.flush()
    index = await ledger.integrated(ticket, wait_seconds=120)
    ack.write(f"integrated {ticket.queue_id} {index}\n")
    ack.flush()


async def main(count: int, ack_path: str) -> None:
    """Append ``count`` entries with bounded concurrency, or drain the queue."""
    settings = load_settings()
    await open_database(settings.database_url)
    token = await open_node_token(settings)
    ledger = await build_ledger(settings, token)
    await ledger.start()
    try:
        with open(ack_path, "a", encoding="utf-8") as ack:
            limit = asyncio.Semaphore(200)

            async def bounded(n: int) -> None:
                async with limit:
                    await append_one(ledger, n, ack)

            await asyncio.gather(*(bounded(n) for n in range(count)))
            while await ledger.store.pending_count():
                await asyncio.sleep(0.05)
    finally:
        await ledger.stop()
        await token.close()
        await close_database()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
