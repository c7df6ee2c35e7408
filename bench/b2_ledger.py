"""B2: ledger appends with signed checkpoints, against hashlib and pymerkle in the same run."""

from __future__ import annotations

import asyncio
import hashlib
import time

from bench.common import Result
from bench.node import ledger_node
from gateway.ledger.entries import make_entry


def _entries(count: int) -> list[bytes]:
    return [
        make_entry("record.anchored", "bench", client="b", digest=f"{i:064x}") for i in range(count)
    ]


def hashlib_rate(entries: list[bytes]) -> float:
    """Leaf hashes per second: the hashing limit."""
    start = time.perf_counter()
    for data in entries:
        hashlib.sha256(b"\x00" + data).digest()
    return len(entries) / (time.perf_counter() - start)


def pymerkle_rate(entries: list[bytes]) -> float:
    """A Python peer: pymerkle's in-memory tree appends per second."""
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for data in entries:
        tree.append_entry(data)
    return len(entries) / (time.perf_counter() - start)


async def ledger_rate(entries: list[bytes], database_url: str | None) -> tuple[float, int]:
    """Appends per second until every entry is integrated under a signed checkpoint."""
    async with ledger_node(database_url) as node:
        ledger = node.ledger
        await asyncio.sleep(0.3)  # let the sequencer take leadership
        before = (await ledger.latest()).size
        start = time.perf_counter()
        tickets = await asyncio.gather(*(ledger.append(data) for data in entries))
        await asyncio.gather(*(ledger.integrated(t, 120) for t in tickets))
        elapsed = time.perf_counter() - start
        checkpoints = len(await ledger.store.checkpoints(before, 10_000_000))
        return len(entries) / elapsed, checkpoints


def run(quick: bool, postgres_url: str | None) -> list[Result]:
    """Measure and compare."""
    count = 1_000 if quick else 50_000
    entries = _entries(count)
    limit = hashlib_rate(entries)
    peer = pymerkle_rate(entries)
    results = []
    rate, checkpoints = asyncio.run(ledger_rate(entries, None))
    results.append(
        Result(
            "B2",
            f"ledger appends, SQLite ({count} entries, {checkpoints} signed checkpoints)",
            rate,
            "entries/s",
            {"hashlib SHA-256": limit, "pymerkle": peer},
            "pymerkle",
            ">= 10,000/s; faster than pymerkle",
            rate >= 10_000 and rate > peer,
        )
    )
    if postgres_url:
        rate, checkpoints = asyncio.run(ledger_rate(entries, postgres_url))
        results.append(
            Result(
                "B2",
                f"ledger appends, PostgreSQL ({count} entries, {checkpoints} checkpoints)",
                rate,
                "entries/s",
                {"hashlib SHA-256": limit, "pymerkle": peer},
                "pymerkle",
                "faster than pymerkle",
                rate > peer,
            )
        )
    return results
