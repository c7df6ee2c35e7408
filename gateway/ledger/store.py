"""Ledger storage: the interface the sequencer and readers use, and its Tortoise implementation.

The same SQL runs on SQLite and PostgreSQL (placeholders are rewritten for
asyncpg). Integration of a batch (leaves, node hashes, checkpoint, removal of
the queued rows) is one transaction; on SQLite it and the queue's own writes run
in one hop to a database thread (:meth:`TurnTakingSqliteClient.write_at_once`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from gateway.db.one_hop import RowInsert, insert_of
from gateway.db.sql import for_connection, is_postgres
from gateway.db.sqlite_engine import one_hop_writer, sqlite_writer
from gateway.db.transaction import transaction
from gateway.errors import Conflict
from gateway.ledger.entries import opening_of, with_opening
from gateway.tlog.merkle import Coord, leaf_hash

LEVEL_SHIFT = 56
_QUEUE_ROW = "INSERT INTO ledger_pending (data, opening) VALUES (?, ?)"
_LAST_QUEUED = "SELECT MAX(id) AS last FROM ledger_pending"
_CURRENT_SIZE = "SELECT MAX(size) AS size FROM ledger_checkpoint"
_ADD_CHECKPOINT = (
    "INSERT INTO ledger_checkpoint (size, root, note, created_at) "
    "VALUES (?, ?, ?, CURRENT_TIMESTAMP)"
)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: size, root and the full note text."""

    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class NewLeaf:
    """One entry being integrated at ``index``."""

    index: int
    queue_id: int
    data: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class IntegrationBatch:
    """Everything one sequencer step writes, in one transaction."""

    old_size: int
    leaves: Sequence[NewLeaf]
    nodes: Sequence[tuple[Coord, bytes]]
    checkpoint: StoredCheckpoint
    beside: Sequence[tuple[int, Model]] = ()
    """Rows written with the leaves, each given its entry's queue id as ``ledger_queue_id``."""


class SequencingConflict(Conflict):
    """Another sequencer integrated first (leadership was lost)."""

    code = "sequencing_conflict"


class LedgerStore(Protocol):
    """What the ledger needs from storage."""

    @property
    def rows_ride(self) -> bool:
        """True when rows beside entries are written with them (by :meth:`integrate` and
        :meth:`enqueue`); else their callers write them."""
        ...

    async def enqueue(
        self, entries: Sequence[bytes], beside: Sequence[Model | None] = ()
    ) -> list[int]:
        """Durably queue entries; returns their queue ids in order. ``beside`` pairs
        entries with rows (each with a ``ledger_queue_id``) written in the same
        transaction, given their entry's queue id."""
        ...

    async def take_pending(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest queued entries (queue id, data), not removed yet."""
        ...

    async def integrate(self, batch: IntegrationBatch) -> None:
        """Write a batch atomically; SequencingConflict if the tree moved meanwhile."""
        ...

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The checkpoint with the largest size."""
        ...

    async def checkpoint(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint for exactly this size."""
        ...

    async def checkpoints(self, after_size: int, limit: int) -> list[StoredCheckpoint]:
        """Checkpoints with size > after_size, ascending."""
        ...

    async def leaves(self, start: int, end: int) -> list[bytes]:
        """Entry data for indexes [start, end)."""
        ...

    async def hashes(self, coords: Iterable[Coord]) -> dict[Coord, bytes]:
        """Stored subtree hashes for the coordinates that exist."""
        ...

    async def index_of_leaf_hash(self, leaf_hash: bytes) -> int | None:
        """The first index whose leaf hash matches."""
        ...

    async def indexes_for_queue_ids(self, queue_ids: Sequence[int]) -> dict[int, int]:
        """Where queued entries ended up, for those already integrated."""
        ...

    async def pending_count(self) -> int:
        """How many entries wait for integration."""
        ...

    async def openings(
        self, leaf_hashes: Sequence[bytes], *, queued: Sequence[int] = ()
    ) -> dict[bytes, bytes]:
        """The stored openings of committed entries, by leaf hash (those that exist);
        ``queued``: queue ids of entries that may not be integrated yet."""
        ...


def _leaf_row(leaf: NewLeaf) -> tuple[int, bytes, str, int, bytes | None]:
    """A leaf as its ``ledger_leaf`` columns (idx, data, leaf_hash, queue_id, opening)."""
    return leaf.index, bytes(leaf.data), leaf.leaf_hash.hex(), leaf.queue_id, opening_of(leaf.data)


def _node_rows(batch: IntegrationBatch) -> list[tuple[int, bytes]]:
    return [(pack_coord(coord), digest) for coord, digest in batch.nodes]


def _queued_ids(batch: IntegrationBatch) -> list[int]:
    """The queue rows the batch integrates (direct entries never had one)."""
    return [leaf.queue_id for leaf in batch.leaves if leaf.queue_id > 0]


_INTEGRATE_ON_POSTGRES = """
WITH sound AS (
    SELECT 1 FROM ledger_checkpoint HAVING COALESCE(MAX(size), 0) = $1
), leaves AS (
    INSERT INTO ledger_leaf (idx, data, leaf_hash, queue_id, opening)
    SELECT leaf.* FROM sound,
        unnest($2::bigint[], $3::bytea[], $4::text[], $5::bigint[], $6::bytea[]) AS leaf
), nodes AS (
    INSERT INTO ledger_node (key, hash)
    SELECT node.* FROM sound, unnest($7::bigint[], $8::bytea[]) AS node
), integrated AS (
    DELETE FROM ledger_pending WHERE id = ANY($9::bigint[]) AND EXISTS (SELECT 1 FROM sound)
)
INSERT INTO ledger_checkpoint (size, root, note, created_at)
SELECT $10, $11, $12, CURRENT_TIMESTAMP FROM sound
RETURNING size
"""
"""A batch in one statement, so one round trip (a busy event loop delays each): leaves,
nodes, the queue rows it integrates and its checkpoint are written only if the tree is
still at the batch's old size, else nothing is and no row is returned. One statement
is one transaction; a second sequencer racing it fails on the leaves' unique index."""


def _integration_values(batch: IntegrationBatch) -> list[Any]:
    leaves = [_leaf_row(leaf) for leaf in batch.leaves]
    leaf_columns = [list(column) for column in zip(*leaves, strict=True)] or [[]] * 5
    nodes = _node_rows(batch)
    node_columns = [list(column) for column in zip(*nodes, strict=True)] or [[]] * 2
    checkpoint = batch.checkpoint
    return [
        batch.old_size,
        *leaf_columns,
        *node_columns,
        _queued_ids(batch),
        checkpoint.size,
        checkpoint.root,
        checkpoint.note,
    ]


def _check_size(current: int | None, batch: IntegrationBatch) -> None:
    if int(current or 0) != batch.old_size:
        raise SequencingConflict(
            f"the tree is at size {current}, not {batch.old_size}: another sequencer ran"
        )


def _ids_up_to(last: int, count: int) -> list[int]:
    """One writer holds the transaction, so SQLite's AUTOINCREMENT ids are contiguous."""
    return list(range(last - count + 1, last + 1))


def _queue_on_sqlite(
    rows: Sequence[tuple[bytes, bytes | None]], db: sqlite3.Connection
) -> list[int]:
    db.executemany(_QUEUE_ROW, rows)
    return _ids_up_to(int(db.execute(_LAST_QUEUED).fetchone()[0]), len(rows))


def _queue_on_sqlite_with_rows(
    rows: Sequence[tuple[bytes, bytes | None]],
    beside: Sequence[tuple[int, Model, RowInsert]],
    db: sqlite3.Connection,
) -> list[int]:
    ids = _queue_on_sqlite(rows, db)
    for position, row, insert in beside:
        row.ledger_queue_id = ids[position]
        insert.run(db)
    return ids


def queue_on_sqlite(entries: Sequence[bytes], db: sqlite3.Connection) -> list[int]:
    """Queue entries (with their openings) inside a one-hop SQLite transaction; their ids."""
    return _queue_on_sqlite([(bytes(data), opening_of(data)) for data in entries], db)


def _integrate_on_sqlite(
    batch: IntegrationBatch, beside: Sequence[RowInsert], db: sqlite3.Connection
) -> None:
    _check_size(db.execute(_CURRENT_SIZE).fetchone()[0], batch)
    db.executemany(
        "INSERT INTO ledger_leaf (idx, data, leaf_hash, queue_id, opening) VALUES (?, ?, ?, ?, ?)",
        [_leaf_row(leaf) for leaf in batch.leaves],
    )
    db.executemany("INSERT INTO ledger_node (key, hash) VALUES (?, ?)", _node_rows(batch))
    db.executemany("DELETE FROM ledger_pending WHERE id = ?", [(i,) for i in _queued_ids(batch)])
    checkpoint = batch.checkpoint
    db.execute(_ADD_CHECKPOINT, (checkpoint.size, checkpoint.root, checkpoint.note))
    for (queue_id, row), insert in zip(batch.beside, beside, strict=True):
        row.ledger_queue_id = queue_id
        insert.run(db)


def pack_coord(coord: Coord) -> int:
    """One integer key for a (level, index) coordinate."""
    level, index = coord
    return (level << LEVEL_SHIFT) | index


def unpack_coord(key: int) -> Coord:
    """Inverse of :func:`pack_coord`."""
    return key >> LEVEL_SHIFT, key & ((1 << LEVEL_SHIFT) - 1)


class TortoiseLedgerStore:
    """LedgerStore on the Tortoise ``default`` connection (SQLite or PostgreSQL)."""

    def __init__(self, connection_name: str = "default") -> None:
        self._name = connection_name
        self._legacy_openings: bool | None = None

    @property
    def _conn(self) -> BaseDBAsyncClient:
        conn: BaseDBAsyncClient = connections.get(self._name)
        return conn

    @property
    def _postgres(self) -> bool:
        return is_postgres(self._conn)

    @property
    def rows_ride(self) -> bool:
        """On SQLite: there a row in the batch's one-hop transaction saves a turn on the
        one connection; PostgreSQL writes such rows faster apart, on another connection."""
        return not self._postgres

    def _sql(self, query: str) -> str:
        return for_connection(query, self._conn)

    def _in_list(self, column: str, count: int) -> str:
        # Only placeholders are interpolated; values are always bound parameters.
        return f"{column} IN ({', '.join('?' * count)})"

    async def _rows(self, query: str, values: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await self._conn.execute_query_dict(self._sql(query), list(values))

    async def enqueue(
        self, entries: Sequence[bytes], beside: Sequence[Model | None] = ()
    ) -> list[int]:
        """Insert queued rows (each with its opening, if any) in one transaction; their ids.

        Inside the caller's transaction the rows join it; on their own on SQLite
        they are written in one hop (:meth:`TurnTakingSqliteClient.write_at_once`).
        Rows ``beside`` (paired with ``entries``; None for none) are written in the
        same transaction, each given its entry's queue id.
        """
        if not entries:
            return []
        rows = [(bytes(data), opening_of(data)) for data in entries]
        at_once = one_hop_writer(self._conn)
        if at_once is not None:
            riding = [
                (position, row, insert_of(row, self._name))
                for position, row in enumerate(beside)
                if row is not None
            ]
            return await at_once.write_at_once(partial(_queue_on_sqlite_with_rows, rows, riding))
        async with transaction(self._name) as conn:
            ids = await self._queue_rows(conn, rows)
            for position, row in enumerate(beside):
                if row is not None:
                    row.ledger_queue_id = ids[position]
                    await row.save(using_db=conn)
            return ids

    async def _queue_rows(
        self, conn: BaseDBAsyncClient, rows: Sequence[tuple[bytes, bytes | None]]
    ) -> list[int]:
        if self._postgres:
            inserted = await conn.execute_query_dict(
                "INSERT INTO ledger_pending (data, opening) "
                "SELECT * FROM unnest($1::bytea[], $2::bytea[]) RETURNING id",
                [[r[0] for r in rows], [r[1] for r in rows]],
            )
            return sorted(int(r["id"]) for r in inserted)
        await conn.execute_many(_QUEUE_ROW, [list(row) for row in rows])
        found = await conn.execute_query_dict(_LAST_QUEUED)
        return _ids_up_to(int(found[0]["last"]), len(rows))

    async def take_pending(self, limit: int) -> list[tuple[int, bytes]]:
        """Oldest queued entries first, each carrying its opening to integration."""
        rows = await self._rows(
            "SELECT id, data, opening FROM ledger_pending ORDER BY id LIMIT ?", [limit]
        )
        return [(int(r["id"]), with_opening(r["data"], r["opening"])) for r in rows]

    async def integrate(self, batch: IntegrationBatch) -> None:
        """Leaves, nodes and checkpoint in one transaction; queued rows removed."""
        if not self._postgres:  # the sequencer's step, in one hop
            inserts = [insert_of(row, self._name) for _, row in batch.beside]
            await sqlite_writer(self._conn).write_at_once(
                partial(_integrate_on_sqlite, batch, inserts), first=True
            )
            return
        if batch.beside:  # rows_ride is False here: never drop a trail row silently
            raise ValueError("rows beside entries are not written by PostgreSQL's batch")
        if await self._rows(_INTEGRATE_ON_POSTGRES, _integration_values(batch)):
            return
        rows = await self._rows(_CURRENT_SIZE)  # nothing was written: say why
        _check_size(rows[0]["size"], batch)
        raise SequencingConflict("the tree moved meanwhile: another sequencer ran")

    async def openings(
        self, leaf_hashes: Sequence[bytes], *, queued: Sequence[int] = ()
    ) -> dict[bytes, bytes]:
        """Stored openings by leaf hash; ``queued`` names queue ids of entries that may
        still wait for integration (read first: integration moves a row from the queue
        to the leaves in one transaction, so an entry is found in one or the other)."""
        found: dict[bytes, bytes] = {}
        if queued:
            where = self._in_list("id", len(queued))
            query = f"SELECT data, opening FROM ledger_pending WHERE {where}"  # noqa: S608
            for row in await self._rows(query, list(queued)):
                if row["opening"] is not None:
                    found[leaf_hash(bytes(row["data"]))] = bytes(row["opening"])
        wanted = [h.hex() for h in dict.fromkeys(leaf_hashes) if h not in found]
        if wanted:
            where = self._in_list("leaf_hash", len(wanted))
            query = f"SELECT leaf_hash, opening FROM ledger_leaf WHERE {where}"  # noqa: S608
            for row in await self._rows(query, wanted):
                if row["opening"] is not None:
                    found.setdefault(bytes.fromhex(row["leaf_hash"]), bytes(row["opening"]))
        missing = [h.hex() for h in dict.fromkeys(leaf_hashes) if h not in found]
        if missing and await self._has_legacy_openings():
            where = self._in_list("leaf_hash", len(missing))
            query = f"SELECT leaf_hash, opening FROM ledger_opening WHERE {where}"  # noqa: S608
            for row in await self._rows(query, missing):
                found[bytes.fromhex(row["leaf_hash"])] = bytes(row["opening"])
        return found

    async def _has_legacy_openings(self) -> bool:
        """Whether the earlier release's ``ledger_opening`` table holds rows (asked once:
        this release never writes it)."""
        if self._legacy_openings is None:
            rows = await self._rows("SELECT 1 AS one FROM ledger_opening LIMIT 1")
            self._legacy_openings = bool(rows)
        return self._legacy_openings

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The newest checkpoint, or None for an empty log."""
        rows = await self._rows(
            "SELECT size, root, note FROM ledger_checkpoint ORDER BY size DESC LIMIT 1"
        )
        return _checkpoint(rows[0]) if rows else None

    async def checkpoint(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint for one size."""
        rows = await self._rows(
            "SELECT size, root, note FROM ledger_checkpoint WHERE size = ?", [size]
        )
        return _checkpoint(rows[0]) if rows else None

    async def checkpoints(self, after_size: int, limit: int) -> list[StoredCheckpoint]:
        """Checkpoints after a size, ascending."""
        rows = await self._rows(
            "SELECT size, root, note FROM ledger_checkpoint WHERE size > ? ORDER BY size LIMIT ?",
            [after_size, limit],
        )
        return [_checkpoint(r) for r in rows]

    async def leaves(self, start: int, end: int) -> list[bytes]:
        """Entry bytes for a contiguous range."""
        rows = await self._rows(
            "SELECT idx, data FROM ledger_leaf WHERE idx >= ? AND idx < ? ORDER BY idx",
            [start, end],
        )
        return [bytes(r["data"]) for r in rows]

    async def hashes(self, coords: Iterable[Coord]) -> dict[Coord, bytes]:
        """Stored subtree hashes, fetched in chunks."""
        keys = sorted({pack_coord(c) for c in coords})
        found: dict[Coord, bytes] = {}
        for offset in range(0, len(keys), 500):
            chunk = keys[offset : offset + 500]
            if self._postgres:
                rows = await self._conn.execute_query_dict(
                    "SELECT key, hash FROM ledger_node WHERE key = ANY($1::bigint[])", [chunk]
                )
            else:
                rows = await self._rows(
                    f"SELECT key, hash FROM ledger_node WHERE {self._in_list('key', len(chunk))}",  # noqa: S608
                    chunk,
                )
            for row in rows:
                found[unpack_coord(int(row["key"]))] = bytes(row["hash"])
        return found

    async def index_of_leaf_hash(self, leaf_hash: bytes) -> int | None:
        """Look a leaf up by its hash."""
        rows = await self._rows(
            "SELECT MIN(idx) AS idx FROM ledger_leaf WHERE leaf_hash = ?", [leaf_hash.hex()]
        )
        value = rows[0]["idx"] if rows else None
        return None if value is None else int(value)

    async def indexes_for_queue_ids(self, queue_ids: Sequence[int]) -> dict[int, int]:
        """Queue id -> index for integrated entries."""
        found: dict[int, int] = {}
        ids = list(queue_ids)
        for offset in range(0, len(ids), 500):
            chunk = ids[offset : offset + 500]
            if self._postgres:
                rows = await self._conn.execute_query_dict(
                    "SELECT idx, queue_id FROM ledger_leaf WHERE queue_id = ANY($1::bigint[])",
                    [chunk],
                )
            else:
                rows = await self._rows(
                    "SELECT idx, queue_id FROM ledger_leaf WHERE "  # noqa: S608
                    + self._in_list("queue_id", len(chunk)),
                    chunk,
                )
            found.update({int(r["queue_id"]): int(r["idx"]) for r in rows})
        return found

    async def pending_count(self) -> int:
        """Entries waiting for the sequencer."""
        rows = await self._rows("SELECT COUNT(*) AS n FROM ledger_pending")
        return int(rows[0]["n"])


def _checkpoint(row: dict[str, Any]) -> StoredCheckpoint:
    return StoredCheckpoint(size=int(row["size"]), root=bytes(row["root"]), note=str(row["note"]))
