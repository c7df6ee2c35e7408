"""A mirror's copy of one log in the witness database: entries, every subtree hash, checkpoints.

It answers the reads tlog-tiles serving needs (``leaves`` and ``hashes``, as
:func:`gateway.ledger.reads.tile_bytes` uses them) and is an
:class:`~gateway.ledger.audit.verify.AuditSource`, so the same audit that checks a
gateway's database checks the mirror's copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from gateway.db.sql import for_connection
from gateway.db.transaction import transaction
from gateway.ledger.audit.verify import LeafRecord
from gateway.ledger.reads import tile_bytes
from gateway.ledger.store import LEVEL_SHIFT, StoredCheckpoint, pack_coord, unpack_coord
from gateway.tlog.merkle import Coord
from gateway.tlog.tiles import (
    TileRef,
)

__all__ = ["MirrorStore"]

_CHUNK = 500
_LEVELS = 64
_MAX_INDEX = (1 << LEVEL_SHIFT) - 1


class MirrorStore:
    """One mirrored log (``log_id``) on a Tortoise connection."""

    def __init__(self, log_id: int, connection_name: str = "default") -> None:
        self.log_id = log_id
        self._name = connection_name

    @property
    def _conn(self) -> BaseDBAsyncClient:
        conn: BaseDBAsyncClient = connections.get(self._name)
        return conn

    def _sql(self, query: str) -> str:
        return for_connection(query, self._conn)

    async def _rows(self, query: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        return await self._conn.execute_query_dict(self._sql(query), [self.log_id, *values])

    # ----- AuditSource ------------------------------------------------------------

    def keeps_level(self, level: int) -> bool:
        """Every complete subtree hash is recomputed and kept."""
        return True

    async def stored_leaf_count(self) -> None:
        """Not compared: while catching up a mirror holds entries past its last checkpoint."""
        return None

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The largest checkpoint whose root the mirror recomputed."""
        rows = await self._rows(
            "SELECT size, root, note FROM mirror_checkpoint WHERE log_id = ? "
            "ORDER BY size DESC LIMIT 1",
            [],
        )
        return _checkpoint(rows[0]) if rows else None

    async def checkpoints(self, after_size: int, limit: int) -> list[StoredCheckpoint]:
        """Mirrored checkpoints after a size, ascending."""
        rows = await self._rows(
            "SELECT size, root, note FROM mirror_checkpoint WHERE log_id = ? AND size > ? "
            "ORDER BY size LIMIT ?",
            [after_size, limit],
        )
        return [_checkpoint(r) for r in rows]

    async def leaf_records(self, start: int, end: int) -> list[LeafRecord]:
        """Entries in [start, end); their leaf hashes are the level-0 node rows."""
        return [LeafRecord(index, data) for index, data in await self._leaf_rows(start, end)]

    async def level_hashes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Stored hashes of one level, ``first..last`` inclusive."""
        rows = await self._rows(
            "SELECT key, hash FROM mirror_node WHERE log_id = ? AND key >= ? AND key <= ?",
            [pack_coord((level, first)), pack_coord((level, last))],
        )
        base = pack_coord((level, 0))
        return {int(r["key"]) - base: bytes(r["hash"]) for r in rows}

    # ----- tile serving -------------------------------------------------------------

    async def leaves(self, start: int, end: int) -> list[bytes]:
        """Entry bytes for [start, end)."""
        return [data for _, data in await self._leaf_rows(start, end)]

    async def hashes(self, coords: Iterable[Coord]) -> dict[Coord, bytes]:
        """Stored subtree hashes for the coordinates that exist."""
        keys = sorted({pack_coord(c) for c in coords})
        found: dict[Coord, bytes] = {}
        for offset in range(0, len(keys), _CHUNK):
            chunk = keys[offset : offset + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = await self._rows(
                f"SELECT key, hash FROM mirror_node WHERE log_id = ? AND key IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )
            found.update({unpack_coord(int(r["key"])): bytes(r["hash"]) for r in rows})
        return found

    async def tile(self, ref: TileRef, size: int) -> bytes:
        """A hash tile or entry bundle of the mirrored tree of ``size`` (NotFound beyond it)."""
        return await tile_bytes(self, ref, size)

    async def _leaf_rows(self, start: int, end: int) -> list[tuple[int, bytes]]:
        rows = await self._rows(
            "SELECT idx, data FROM mirror_leaf WHERE log_id = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            [start, end],
        )
        return [(int(r["idx"]), bytes(r["data"])) for r in rows]

    # ----- writing --------------------------------------------------------------------

    async def leaf_count(self) -> int:
        """One past the largest stored entry index."""
        rows = await self._rows("SELECT MAX(idx) AS last FROM mirror_leaf WHERE log_id = ?", [])
        last = rows[0]["last"] if rows else None
        return 0 if last is None else int(last) + 1

    async def append(
        self, leaves: Sequence[tuple[int, bytes]], nodes: Sequence[tuple[Coord, bytes]]
    ) -> None:
        """Entries and the subtree hashes they complete, in one transaction."""
        async with transaction(self._name) as conn:
            await conn.execute_many(
                self._sql("INSERT INTO mirror_leaf (log_id, idx, data) VALUES (?, ?, ?)"),
                [[self.log_id, index, data] for index, data in leaves],
            )
            await conn.execute_many(
                self._sql("INSERT INTO mirror_node (log_id, key, hash) VALUES (?, ?, ?)"),
                [[self.log_id, pack_coord(coord), digest] for coord, digest in nodes],
            )

    async def truncate(self, size: int) -> None:
        """Drop entries, subtree hashes and checkpoints beyond ``size``."""
        async with transaction(self._name) as conn:
            await conn.execute_query(
                self._sql("DELETE FROM mirror_leaf WHERE log_id = ? AND idx >= ?"),
                [self.log_id, size],
            )
            await conn.execute_query(
                self._sql("DELETE FROM mirror_checkpoint WHERE log_id = ? AND size > ?"),
                [self.log_id, size],
            )
            for level in range(_LEVELS):
                # Subtree i of a level is complete within [0, size) iff i < size >> level.
                await conn.execute_query(
                    self._sql("DELETE FROM mirror_node WHERE log_id = ? AND key >= ? AND key <= ?"),
                    [
                        self.log_id,
                        pack_coord((level, size >> level)),
                        pack_coord((level, _MAX_INDEX)),
                    ],
                )

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Record a checkpoint whose root was recomputed from the stored entries."""
        await self._conn.execute_query(
            self._sql(
                "INSERT INTO mirror_checkpoint (log_id, size, root, note, created_at) "
                "VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)"
            ),
            [self.log_id, checkpoint.size, checkpoint.root, checkpoint.note],
        )


def _checkpoint(row: dict[str, Any]) -> StoredCheckpoint:
    return StoredCheckpoint(int(row["size"]), bytes(row["root"]), str(row["note"]))
