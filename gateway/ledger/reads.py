"""Read answers the ledger API serves: tiles, entry bundles, proofs with their roots.

Everything is answered against the latest signed checkpoint: a tile, entry or
proof beyond it does not exist yet. Argument errors are ``BadRequest`` naming
the parameter; absent things are ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import BadRequest, NotFound, Unavailable
from gateway.ledger.service import LedgerService
from gateway.ledger.store import LedgerStore, StoredCheckpoint
from gateway.tlog.merkle import (
    Coord,
    MissingHashError,
    leaf_hash,
    root_coords,
    root_from_hashes,
)
from gateway.tlog.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    TileRef,
    encode_entry_bundle,
    tile_hash_coords,
)

__all__ = [
    "ConsistencyAnswer",
    "InclusionAnswer",
    "consistency",
    "entry_at",
    "inclusion",
    "root_at",
    "tile_bytes",
]


class OutOfRange(BadRequest):
    """A parameter names a tree size or index the tree cannot answer for."""

    code = "out_of_range"


@dataclass(frozen=True)
class InclusionAnswer:
    """An RFC 9162 inclusion proof with what it proves."""

    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]
    checkpoint: str | None


@dataclass(frozen=True)
class ConsistencyAnswer:
    """An RFC 9162 consistency proof between two tree sizes, with both roots."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]
    checkpoint: str | None


def _missing(exc: MissingHashError) -> Unavailable:
    return Unavailable(f"the ledger store is incomplete: {exc.message}", code="ledger_incomplete")


async def root_at(store: LedgerStore, size: int) -> bytes:
    """The root of the tree of ``size`` from stored subtree hashes."""
    try:
        return root_from_hashes(size, await store.hashes(root_coords(size)))
    except MissingHashError as exc:
        raise _missing(exc) from None


async def _size_param(ledger: LedgerService, size: int | None, name: str) -> StoredCheckpoint:
    """The latest checkpoint, checking a requested size is not beyond it."""
    latest = await ledger.latest()
    if size is not None and size > latest.size:
        raise OutOfRange(
            f"parameter {name!r}: {size} is beyond the tree, which has {latest.size} entries"
        )
    return latest


async def _checkpoint_note(
    ledger: LedgerService, latest: StoredCheckpoint, size: int
) -> str | None:
    if size == latest.size:
        return latest.note
    stored = await ledger.store.checkpoint(size)
    return stored.note if stored else None


# --- tiles ---------------------------------------------------------------------


def _tile_items(ref: TileRef, size: int) -> int:
    """How many of the tile's items exist in the tree of ``size``."""
    level_items = size if ref.level is None else size >> (TILE_HEIGHT * ref.level)
    return max(0, min(TILE_WIDTH, level_items - ref.index * TILE_WIDTH))


class TileSource(Protocol):
    """Where tiles are read from: the log's own store, or a witness's mirror."""

    async def leaves(self, start: int, end: int) -> list[bytes]:
        """Entry data for indexes [start, end)."""
        ...

    async def hashes(self, coords: Iterable[Coord]) -> dict[Coord, bytes]:
        """Stored subtree hashes for the coordinates that exist."""
        ...


async def tile_bytes(store: TileSource, ref: TileRef, size: int) -> bytes:
    """A hash tile or entry bundle of the tree of ``size``; NotFound unless it exists.

    A full tile exists once all 256 items do. A partial tile of width W is
    served while its first W items exist: its content never changes, so any
    width a past checkpoint implied stays available.
    """
    if _tile_items(ref, size) < ref.width:
        raise NotFound(f"{ref.path} does not exist in the tree of {size} entries")
    first = ref.index * TILE_WIDTH
    if ref.level is None:
        data = await store.leaves(first, first + ref.width)
        if len(data) != ref.width:
            raise Unavailable(f"the ledger store is missing entries of {ref.path}")
        return encode_entry_bundle(data)
    coords = tile_hash_coords(ref.level, ref.index, ref.width)
    hashes = await store.hashes(coords)
    if len(hashes) != len(coords):
        raise Unavailable(f"the ledger store is missing hashes of {ref.path}")
    return b"".join(hashes[c] for c in coords)


# --- entries and proofs ----------------------------------------------------------


async def entry_at(ledger: LedgerService, index: int) -> bytes:
    """The entry bytes at ``index``; NotFound beyond the latest checkpoint."""
    latest = await ledger.latest()
    if index >= latest.size:
        raise NotFound(f"no ledger entry at index {index}; the tree has {latest.size} entries")
    return await ledger.entry(index)


async def inclusion(
    ledger: LedgerService,
    *,
    size: int | None,
    index: int | None = None,
    leaf: bytes | None = None,
) -> InclusionAnswer:
    """Inclusion proof of entry ``index`` (or of the first entry with leaf hash ``leaf``)."""
    latest = await _size_param(ledger, size, "size")
    tree_size = latest.size if size is None else size
    if leaf is not None:
        found = await ledger.store.index_of_leaf_hash(leaf)
        if found is None or found >= tree_size:
            raise NotFound(f"no entry with leaf hash {leaf.hex()} in the tree of {tree_size}")
        index = found
    if index is None:
        raise BadRequest("give parameter 'index' or 'leaf_hash'", code="invalid_parameter")
    if index >= tree_size:
        raise OutOfRange(
            f"parameter 'index': entry {index} is not in the tree of {tree_size} entries"
        )
    data = await ledger.entry(index)
    try:
        proof = await ledger.inclusion_proof(index, tree_size)
    except MissingHashError as exc:
        raise _missing(exc) from None
    return InclusionAnswer(
        index=index,
        size=tree_size,
        leaf_hash=leaf_hash(data),
        root=await root_at(ledger.store, tree_size),
        proof=proof,
        checkpoint=await _checkpoint_note(ledger, latest, tree_size),
    )


async def consistency(ledger: LedgerService, old: int, new: int | None) -> ConsistencyAnswer:
    """Consistency proof from size ``old`` to ``new`` (the latest size by default)."""
    latest = await _size_param(ledger, new, "new")
    new_size = latest.size if new is None else new
    if old > new_size:
        raise OutOfRange(f"parameter 'old': {old} is larger than the new size {new_size}")
    try:
        proof = await ledger.consistency_proof(old, new_size)
    except MissingHashError as exc:
        raise _missing(exc) from None
    return ConsistencyAnswer(
        old_size=old,
        new_size=new_size,
        old_root=await root_at(ledger.store, old),
        new_root=await root_at(ledger.store, new_size),
        proof=proof,
        checkpoint=await _checkpoint_note(ledger, latest, new_size),
    )
