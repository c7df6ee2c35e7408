"""Reading ledger entries back in tests, queued or integrated (the database must be open).

Queued rows are read before integrated ones and merged by queue id: an entry the
sequencer integrates between the two reads is seen once, never twice or not at all.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.ledger.entries import open_entry
from gateway.ledger.models import LeafRow, OpeningRow, PendingEntry
from gateway.tlog.merkle import leaf_hash


async def _all_entry_bytes() -> list[bytes]:
    """Integrated entries in log order, then those still queued in queue order."""
    pending = await PendingEntry.all().order_by("id").values_list("id", "data")
    leaves = await LeafRow.all().order_by("idx").values_list("queue_id", "data")
    integrated = {int(qid) for qid, _ in leaves}
    return [bytes(data) for _, data in leaves] + [
        bytes(data) for qid, data in pending if int(qid) not in integrated
    ]


async def opened(data: bytes) -> dict[str, Any]:
    """An entry with its fields opened from the node's stored opening."""
    row = await OpeningRow.get_or_none(leaf_hash=leaf_hash(data).hex())
    return open_entry(data, None if row is None else bytes(row.opening))


async def ledger_entries(entry_type: str, **match: Any) -> list[dict[str, Any]]:
    """Every entry of a type, queued or integrated, whose fields equal ``match`` (opened)."""
    found = []
    for data in await _all_entry_bytes():
        if json.loads(data)["type"] != entry_type:
            continue
        entry = await opened(data)
        if all(entry.get(k) == v for k, v in match.items()):
            found.append(entry)
    return found


async def raw_ledger_bytes() -> bytes:
    """All entry bytes, for checks that something never reaches the ledger."""
    return b"\n".join(await _all_entry_bytes())
