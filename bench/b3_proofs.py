"""B3: inclusion and consistency proofs from storage at a large tree size, against pymerkle."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import Result, median
from gateway.db.setup import close_database, open_database
from gateway.ledger.store import TortoiseLedgerStore, pack_coord
from gateway.tlog.merkle import (
    Frontier,
    assemble_proof,
    consistency_proof_coords,
    inclusion_proof_coords,
    leaf_hash,
)

SAMPLES = 500


def _leaf(i: int) -> bytes:
    return b'{"i":%d,"type":"record.anchored"}' % i


async def _prepare(path: Path, size: int) -> None:
    await open_database(f"sqlite://{path}", create_schema=True)
    await close_database()
    frontier = Frontier()
    with sqlite3.connect(path) as db:
        rows: list[tuple[int, bytes]] = []
        for i in range(size):
            rows.extend((pack_coord(c), h) for c, h in frontier.append(leaf_hash(_leaf(i))))
            if len(rows) >= 200_000:
                db.executemany("INSERT INTO ledger_node (key, hash) VALUES (?, ?)", rows)
                rows.clear()
        db.executemany("INSERT INTO ledger_node (key, hash) VALUES (?, ?)", rows)
        db.execute(
            "INSERT INTO ledger_checkpoint (size, root, note, created_at) "
            "VALUES (?, ?, 'bench', CURRENT_TIMESTAMP)",
            (size, frontier.root()),
        )


async def _ours(path: Path, size: int, rng: random.Random) -> tuple[list[float], list[float]]:
    await open_database(f"sqlite://{path}")
    store = TortoiseLedgerStore()
    inclusion, consistency = [], []
    try:
        for _ in range(SAMPLES):
            index = rng.randrange(size)
            start = time.perf_counter()
            groups = inclusion_proof_coords(index, size)
            assemble_proof(groups, await store.hashes(c for g in groups for c in g))
            inclusion.append((time.perf_counter() - start) * 1000)
            old = rng.randrange(1, size)
            start = time.perf_counter()
            groups = consistency_proof_coords(old, size)
            assemble_proof(groups, await store.hashes(c for g in groups for c in g))
            consistency.append((time.perf_counter() - start) * 1000)
    finally:
        await close_database()
    return inclusion, consistency


def _pymerkle(
    size: int, rng: random.Random, dbfile: Path | None
) -> tuple[list[float], list[float]]:
    from pymerkle import InmemoryTree, SqliteTree

    tree = (
        SqliteTree(str(dbfile), algorithm="sha256") if dbfile else InmemoryTree(algorithm="sha256")
    )
    if dbfile:
        batch = 100_000
        for offset in range(0, size, batch):
            tree.append_entries([_leaf(i) for i in range(offset, min(size, offset + batch))])
    else:
        for i in range(size):
            tree.append_entry(_leaf(i))
    inclusion, consistency = [], []
    for _ in range(SAMPLES):
        index = rng.randrange(size)
        start = time.perf_counter()
        tree.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
        inclusion.append((time.perf_counter() - start) * 1000)
        old = rng.randrange(1, size)
        start = time.perf_counter()
        tree.prove_consistency(old, size)
        consistency.append((time.perf_counter() - start) * 1000)
    return inclusion, consistency


def run(quick: bool) -> list[Result]:
    """Median proof latency in milliseconds at 1,000,000 entries (10,000 in quick mode)."""
    size = 10_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="sekisho-b3-") as tmp:
        path = Path(tmp) / "proofs.sqlite3"
        asyncio.run(_prepare(path, size))
        ours_inc, ours_con = asyncio.run(_ours(path, size, random.Random(1)))
        mem_inc, mem_con = _pymerkle(size, random.Random(1), None)
        sql_inc, sql_con = _pymerkle(size, random.Random(1), Path(tmp) / "pymerkle.sqlite3")
        os.sync()
    results = []
    for what, ours, memory, stored in (
        ("inclusion", ours_inc, mem_inc, sql_inc),
        ("consistency", ours_con, mem_con, sql_con),
    ):
        value = median(ours)
        baselines = {"pymerkle SQLite": median(stored), "pymerkle in-memory": median(memory)}
        results.append(
            Result(
                "B3",
                f"{what} proof from SQLite at {size:,} entries (median)",
                value,
                "ms",
                baselines,
                "pymerkle SQLite",
                "median < 1 ms; faster than pymerkle",
                value < 1.0 and value < baselines["pymerkle SQLite"],
                note="ratio < 1 means faster",
            )
        )
    return results
