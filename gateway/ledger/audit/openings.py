"""The audit's second half where the openings are at hand: every stored opening matches.

A committed entry (format 2) says nothing in clear; its opening, kept in the
node's database, is what officers read. Someone who can write the database could
change an opening (say, the actor of an access) without touching the tree; the
commitment in the signed leaf catches it. This walks the log and reports the
first entry whose opening is missing or does not match, with its index.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from gateway.ledger.audit.model import Finding
from gateway.ledger.commitments import FORMAT, OpeningError, check_opening, decode_opening
from gateway.ledger.store import LedgerStore
from gateway.tlog.merkle import leaf_hash

CHUNK = 2000


async def check_openings(
    store: LedgerStore, size: int, progress: Callable[[int, int], None] | None = None
) -> Finding | None:
    """The first entry in [0, size) whose stored opening is missing or does not match."""
    for start in range(0, size, CHUNK):
        leaves = await store.leaves(start, min(size, start + CHUNK))
        openings = await store.openings([leaf_hash(d) for d in leaves])
        for offset, data in enumerate(leaves):
            index = start + offset
            try:
                leaf = json.loads(data)
            except ValueError:
                continue  # not an entry of ours: the tree audit judges the bytes
            if not isinstance(leaf, dict) or leaf.get("v") != FORMAT:
                continue  # written in clear, before commitments
            opening = openings.get(leaf_hash(data))
            if opening is None:
                return Finding("opening_missing", index, f"entry {index}: its opening is missing")
            try:
                check_opening(leaf, decode_opening(opening))
            except OpeningError as exc:
                return Finding("opening_mismatch", index, f"entry {index}: the opening's {exc}")
        if progress is not None:
            progress(min(size, start + CHUNK), size)
    return None
