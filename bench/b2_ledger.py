"""B2: ledger appends with signed checkpoints, against hashlib and pymerkle in the same run.

Our appends are durable and signed before they are acknowledged, so the verdict
compares them with pymerkle's durable (SQLite) appends, one entry at a time.
pymerkle's in-memory tree and its SQLite bulk loader are printed beside it: both
are faster, and neither stores a tree, computes a root or signs a checkpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from pathlib import Path

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
    """A Python peer: pymerkle's in-memory tree appends per second (nothing stored)."""
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for data in entries:
        tree.append_entry(data)
    return len(entries) / (time.perf_counter() - start)


def pymerkle_sqlite_rates(entries: list[bytes], per_entry_count: int) -> tuple[float, float]:
    """pymerkle's SQLite tree: (one durable append per entry, bulk loads of 1,000 entries).

    ``append_entry`` commits each entry before returning, like an acknowledged
    append; ``append_entries`` commits a chunk at once, a bulk load of entries the
    caller already holds. Neither computes a root or signs anything. The
    per-entry rate is measured on the first ``per_entry_count`` entries (a commit
    per entry is slow enough that the whole set would take minutes).
    """
    from pymerkle import SqliteTree

    with tempfile.TemporaryDirectory(prefix="sekisho-b2-pymerkle-") as tmp:
        with SqliteTree(str(Path(tmp) / "single.sqlite3"), algorithm="sha256") as tree:
            start = time.perf_counter()
            for data in entries[:per_entry_count]:
                tree.append_entry(data)
            single = min(per_entry_count, len(entries)) / (time.perf_counter() - start)
        with SqliteTree(str(Path(tmp) / "bulk.sqlite3"), algorithm="sha256") as tree:
            start = time.perf_counter()
            for offset in range(0, len(entries), 1000):
                tree.append_entries(entries[offset : offset + 1000], chunksize=1000)
            bulk = len(entries) / (time.perf_counter() - start)
    return single, bulk


async def ledger_rate(entries: list[bytes], database_url: str | None) -> tuple[float, int]:
    """Appends per second until every entry is integrated under a signed checkpoint."""
    async with ledger_node(database_url) as node:
        ledger = node.ledger
        # Let the sequencer take leadership: a fixed wait measured the slower queued
        # path whenever the start took longer on a loaded machine.
        while not ledger.is_leader or await ledger.store.latest_checkpoint() is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
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
    in_memory = pymerkle_rate(entries)
    peer, bulk = pymerkle_sqlite_rates(entries, 200 if quick else 2_000)
    baselines = {
        "hashlib SHA-256": limit,
        "pymerkle SQLite, one append per entry": peer,
        "pymerkle SQLite bulk loads of 1,000": bulk,
        "pymerkle in-memory": in_memory,
    }
    results = []
    rate, checkpoints = asyncio.run(ledger_rate(entries, None))
    results.append(
        Result(
            "B2",
            f"ledger appends, SQLite ({count} entries, {checkpoints} signed checkpoints)",
            rate,
            "entries/s",
            baselines,
            "pymerkle SQLite, one append per entry",
            ">= 10,000/s; faster than pymerkle (durable appends)",
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
                baselines,
                "pymerkle SQLite, one append per entry",
                "faster than pymerkle (durable appends)",
                rate > peer,
            )
        )
    return results
