"""One bad ledger entry fails its own caller, never the batch it would have joined."""

from __future__ import annotations

import asyncio

from gateway.ledger.entries import MAX_ENTRY_BYTES, EntryError, make_entry
from tests.gateway.ledger.conftest import MakeNode

BAD_ENTRIES = [
    b"not json",
    b'{"type": "record.anchored", "node": "x"}',  # not canonical
    b'{"node":"x","type":"no.such.type"}',
    make_entry("record.anchored", "x", client="c")[:-1] + b',"pad":"' + b"p" * MAX_ENTRY_BYTES,
]


async def test_a_bad_entry_is_refused_and_the_others_in_its_batch_integrate(
    make_node: MakeNode,
) -> None:
    node = await make_node()
    ledger = node.ledger
    good = [
        make_entry("record.anchored", ledger.node, client="c", digest=f"{i:064x}")
        for i in range(40)
    ]
    entries = good[:20] + BAD_ENTRIES + good[20:]
    outcomes = await asyncio.gather(*(ledger.append(e) for e in entries), return_exceptions=True)
    refused = [e for e, o in zip(entries, outcomes, strict=True) if isinstance(o, Exception)]
    assert refused == BAD_ENTRIES
    assert all(isinstance(o, EntryError) for o in outcomes if isinstance(o, Exception))
    tickets = [o for o in outcomes if not isinstance(o, BaseException)]
    indexes = await asyncio.gather(*(ledger.integrated(t) for t in tickets))
    assert len(set(indexes)) == len(good)
    leaves = await ledger.store.leaves(0, max(indexes) + 1)
    assert not set(BAD_ENTRIES) & set(leaves)
