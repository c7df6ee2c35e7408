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


async def _all_entries() -> list[tuple[bytes, bytes | None]]:
    """Integrated entries in log order, then those still queued in queue order, each
    with the opening kept in its row."""
    pending = await PendingEntry.all().order_by("id").values_list("id", "data", "opening")
    leaves = await LeafRow.all().order_by("idx").values_list("queue_id", "data", "opening")
    integrated = {int(qid) for qid, _, _ in leaves}
    return [(bytes(data), _bytes(opening)) for _, data, opening in leaves] + [
        (bytes(data), _bytes(opening))
        for qid, data, opening in pending
        if int(qid) not in integrated
    ]


def _bytes(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


async def opened(data: bytes, opening: bytes | None = None) -> dict[str, Any]:
    """An entry with its fields opened from the node's stored opening."""
    if opening is None:  # written by the earlier release, or looked up by its bytes
        row = await LeafRow.filter(leaf_hash=leaf_hash(data).hex()).first()
        if row is not None and row.opening is not None:
            opening = bytes(row.opening)
        else:
            legacy = await OpeningRow.get_or_none(leaf_hash=leaf_hash(data).hex())
            opening = None if legacy is None else bytes(legacy.opening)
    return open_entry(data, opening)


async def ledger_entries(entry_type: str, **match: Any) -> list[dict[str, Any]]:
    """Every entry of a type, queued or integrated, whose fields equal ``match`` (opened)."""
    found = []
    for data, opening in await _all_entries():
        if json.loads(data)["type"] != entry_type:
            continue
        entry = await opened(data, opening)
        if all(entry.get(k) == v for k, v in match.items()):
            found.append(entry)
    return found


async def raw_ledger_bytes() -> bytes:
    """All entry bytes, for checks that something never reaches the ledger."""
    return b"\n".join(data for data, _ in await _all_entries())
