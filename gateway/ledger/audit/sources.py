"""Where an audit reads the log: the local database, or C2SP tlog-tiles fetched remotely."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Protocol, TypeVar

from gateway.errors import Unavailable
from gateway.ledger.audit.model import AuditProblem, Finding, LeafRecord
from gateway.ledger.store import StoredCheckpoint, TortoiseLedgerStore, pack_coord
from gateway.tlog.checkpoint import parse_checkpoint
from gateway.tlog.merkle import HASH_SIZE
from gateway.tlog.note import NoteError, parse_note
from gateway.tlog.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    EntryBundleError,
    decode_entry_bundle,
    entries_path,
    tile_path,
)

__all__ = ["DatabaseAuditSource", "Fetcher", "TileAuditSource"]

T = TypeVar("T")


class DatabaseAuditSource(TortoiseLedgerStore):
    """The ledger tables, read in ranges; every Merkle level is stored."""

    def keeps_level(self, level: int) -> bool:
        """The database keeps every complete subtree hash."""
        return True

    async def stored_leaf_count(self) -> int:
        """One past the largest stored leaf index."""
        rows = await self._rows("SELECT MAX(idx) AS last FROM ledger_leaf")
        last = rows[0]["last"] if rows else None
        return 0 if last is None else int(last) + 1

    async def leaf_records(self, start: int, end: int) -> list[LeafRecord]:
        """Leaf rows with their stored leaf hash column."""
        rows = await self._rows(
            "SELECT idx, data, leaf_hash FROM ledger_leaf WHERE idx >= ? AND idx < ? ORDER BY idx",
            [start, end],
        )
        return [LeafRecord(int(r["idx"]), bytes(r["data"]), _hex(r["leaf_hash"])) for r in rows]

    async def level_hashes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Node rows of one level in one range query."""
        rows = await self._rows(
            "SELECT key, hash FROM ledger_node WHERE key >= ? AND key <= ?",
            [pack_coord((level, first)), pack_coord((level, last))],
        )
        base = pack_coord((level, 0))
        return {int(r["key"]) - base: bytes(r["hash"]) for r in rows}


def _hex(value: object) -> bytes:
    """The stored hex leaf hash; anything unreadable compares unequal (empty)."""
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        return b""


class Fetcher(Protocol):
    """Reads one resource below a tlog-tiles prefix (``checkpoint``, ``tile/0/000``...)."""

    async def fetch(self, path: str) -> bytes | None:
        """The resource body, or None when the log answers that it does not exist."""
        ...


class TileAuditSource:
    """A tlog-tiles log over a :class:`Fetcher`: checkpoint, hash tiles and entry bundles.

    Only the latest checkpoint is available, and only the tile levels
    (Merkle levels 0, 8, 16...); the levels in between are recomputed.
    """

    def __init__(self, fetcher: Fetcher, *, parallel: int = 8) -> None:
        self._fetcher = fetcher
        self._limit = asyncio.Semaphore(parallel)
        self._latest: StoredCheckpoint | None = None
        self._cache: dict[int, tuple[int, list[bytes]]] = {}

    @property
    def _size(self) -> int:
        return self._latest.size if self._latest else 0

    def keeps_level(self, level: int) -> bool:
        """Tiles carry every 8th Merkle level."""
        return level % TILE_HEIGHT == 0

    async def stored_leaf_count(self) -> None:
        """A remote log only shows what its checkpoint covers."""
        return None

    async def latest_checkpoint(self) -> StoredCheckpoint:
        """Fetch and parse (not yet verify) the checkpoint; tiles are sized from it."""
        data = await self._fetcher.fetch("checkpoint")
        if data is None:
            raise Unavailable("the log serves no checkpoint")
        try:
            note = parse_note(data)
            checkpoint = parse_checkpoint(note.text)
        except NoteError as exc:
            raise AuditProblem(
                Finding("checkpoint_malformed", 0, f"the served checkpoint is malformed ({exc})")
            ) from None
        self._latest = StoredCheckpoint(checkpoint.size, checkpoint.root_hash, data.decode())
        return self._latest

    async def checkpoints(self, after_size: int, limit: int) -> list[StoredCheckpoint]:
        """The latest checkpoint, if it is after ``after_size``."""
        latest = self._latest
        return [latest] if latest is not None and latest.size > after_size and limit else []

    async def leaf_records(self, start: int, end: int) -> list[LeafRecord]:
        """Leaves from the entry bundles covering [start, end)."""
        if start >= end:
            return []
        bundles = range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1)
        decoded = await self._gather(self._bundle(n) for n in bundles)
        records: list[LeafRecord] = []
        for n, entries in zip(bundles, decoded, strict=True):
            base = n * TILE_WIDTH
            records.extend(
                LeafRecord(base + i, data)
                for i, data in enumerate(entries)
                if start <= base + i < end
            )
        return records

    async def level_hashes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Hashes of one tile level from the tiles covering ``first..last``."""
        tile_level = level // TILE_HEIGHT
        numbers = range(first // TILE_WIDTH, last // TILE_WIDTH + 1)
        tiles = await self._gather(self._tile(tile_level, n) for n in numbers)
        found: dict[int, bytes] = {}
        for n, hashes in zip(numbers, tiles, strict=True):
            for i, digest in enumerate(hashes):
                if first <= n * TILE_WIDTH + i <= last:
                    found[n * TILE_WIDTH + i] = digest
        return found

    async def _gather(self, jobs: Iterable[Awaitable[T]]) -> list[T]:
        async def limited(job: Awaitable[T]) -> T:
            async with self._limit:
                return await job

        return list(await asyncio.gather(*(limited(job) for job in jobs)))

    def _width(self, tile_level: int | None, n: int) -> int:
        items = self._size >> (TILE_HEIGHT * (tile_level or 0))
        return max(0, min(TILE_WIDTH, items - n * TILE_WIDTH))

    async def _fetch_required(self, path: str, first_entry: int) -> bytes:
        data = await self._fetcher.fetch(path)
        if data is None:
            raise AuditProblem(
                Finding(
                    "tile_missing",
                    first_entry,
                    f"{path}: the log does not serve it, though its checkpoint needs it",
                )
            )
        return data

    async def _bundle(self, n: int) -> list[bytes]:
        width = self._width(None, n)
        path = entries_path(n, width)
        data = await self._fetch_required(path, n * TILE_WIDTH)
        try:
            return decode_entry_bundle(data, width)
        except EntryBundleError as exc:
            raise AuditProblem(
                Finding("bundle_malformed", n * TILE_WIDTH, f"{path}: {exc}")
            ) from None

    async def _tile(self, tile_level: int, n: int) -> list[bytes]:
        cached = self._cache.get(tile_level)
        if cached is not None and cached[0] == n:
            return cached[1]
        width = self._width(tile_level, n)
        path = tile_path(tile_level, n, width)
        first_entry = n * TILE_WIDTH ** (tile_level + 1)
        data = await self._fetch_required(path, first_entry)
        if len(data) != width * HASH_SIZE:
            raise AuditProblem(
                Finding(
                    "tile_malformed",
                    first_entry,
                    f"{path}: {len(data)} bytes where {width * HASH_SIZE} were expected",
                )
            )
        hashes = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        if tile_level:  # level-0 tiles are read once; higher ones span many chunks
            self._cache[tile_level] = (n, hashes)
        return hashes
