"""Mirroring: pull every entry of a log through its tlog-tiles entry bundles and recompute it.

One step fetches the log's checkpoint, verifies the log's signature, fetches
the entry bundles the mirror lacks, appends their leaf hashes to the frontier
(storing every completed subtree, as a sequencer does) and records the
checkpoint only when the recomputed root equals the signed one. Entries are
committed in chunks so a long catch-up survives a restart; a checkpoint row
marks what the mirror vouches for.

Disagreements are evidence, kept like the witness's own: a signed root that
the entries do not produce (``mirror_mismatch``), or a signed checkpoint, or
one this witness cosigned, whose root differs from the mirror's tree at that
size (``split_view``). Either halts mirroring of the log until an operator
resumes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.errors import SekishoError, Unavailable
from gateway.ledger.audit.sources import Fetcher
from gateway.ledger.store import StoredCheckpoint
from gateway.tlog.checkpoint import Checkpoint, open_signed_checkpoint
from gateway.tlog.merkle import Frontier, leaf_hash, root_coords, root_from_hashes
from gateway.tlog.note import NoteError
from gateway.tlog.tiles import TILE_WIDTH, EntryBundleError, decode_entry_bundle, entries_path
from gateway.witness.core import EvidenceRecord, LogRecord
from gateway.witness.mirror_store import MirrorStore

__all__ = ["CHUNK_BUNDLES", "MirrorDisagrees", "MirrorError", "SyncResult", "sync_once"]

CHUNK_BUNDLES = 16
"""Entry bundles fetched and committed per step (4096 entries)."""
_PARALLEL = 8


class MirrorError(Unavailable):
    """The log could not be mirrored this time (unreachable, bad signature, malformed data)."""

    code = "mirror_error"


class MirrorDisagrees(SekishoError):
    """The log's signed data contradicts itself or what this witness holds: evidence."""

    code = "mirror_disagrees"

    def __init__(self, evidence: EvidenceRecord) -> None:
        super().__init__(evidence.detail)
        self.evidence = evidence


@dataclass(frozen=True)
class SyncResult:
    """Where a step left the mirror."""

    size: int
    fetched: int


Progress = Callable[[int], Awaitable[None]]


async def _signed_checkpoint(fetcher: Fetcher, log: LogRecord) -> tuple[Checkpoint, str]:
    data = await fetcher.fetch("checkpoint")
    if data is None:
        raise MirrorError(f"the log {log.origin!r} serves no checkpoint")
    try:
        checkpoint, _ = open_signed_checkpoint(data, log.origin, log.key_name, log.public_key)
    except NoteError as exc:
        raise MirrorError(f"the log's checkpoint does not verify: {exc.message}") from None
    return checkpoint, data.decode("utf-8")


def _disagreement(
    kind: str, log: LogRecord, held: StoredCheckpoint | None, note: str, detail: str
) -> MirrorDisagrees:
    return MirrorDisagrees(
        EvidenceRecord(
            kind=kind,
            alarm=True,
            origin=log.origin,
            held_size=held.size if held else 0,
            held_note=held.note if held else None,
            presented_old_size=held.size if held else 0,
            presented_note=note,
            presented_proof="",
            detail=detail,
        )
    )


async def _root_at(store: MirrorStore, size: int) -> bytes:
    return root_from_hashes(size, await store.hashes(root_coords(size)))


async def _bundle(fetcher: Fetcher, n: int, size: int) -> list[bytes]:
    width = min(TILE_WIDTH, size - n * TILE_WIDTH)
    path = entries_path(n, width)
    data = await fetcher.fetch(path)
    if data is None:
        raise MirrorError(f"the log does not serve {path}, though its checkpoint needs it")
    try:
        return decode_entry_bundle(data, width)
    except EntryBundleError as exc:
        raise MirrorError(f"{path}: {exc.message}") from None


async def _entries(fetcher: Fetcher, start: int, end: int, size: int) -> list[bytes]:
    """Entries [start, end) of the tree of ``size``, from the bundles covering them."""
    limit = asyncio.Semaphore(_PARALLEL)

    async def one(n: int) -> list[bytes]:
        async with limit:
            return await _bundle(fetcher, n, size)

    numbers = range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1)
    bundles = await asyncio.gather(*(one(n) for n in numbers))
    first = numbers[0] * TILE_WIDTH
    flat = [entry for bundle in bundles for entry in bundle]
    return flat[start - first : end - first]


async def _check_known_root(
    store: MirrorStore, log: LogRecord, size: int, root: bytes, note: str, what: str
) -> None:
    """Compare a signed root of ``size`` with the mirror's own tree at that size."""
    if 0 < size <= await store.leaf_count() and await _root_at(store, size) != root:
        held = await store.latest_checkpoint()
        detail = (
            f"{what} of size {size} carries a root other than the one the mirrored entries "
            "produce: the log has shown two histories"
        )
        raise _disagreement("split_view", log, held, note, detail)


async def sync_once(
    store: MirrorStore, log: LogRecord, fetcher: Fetcher, progress: Progress | None = None
) -> SyncResult:
    """Bring the mirror up to the log's current checkpoint (one step, resumable)."""
    checkpoint, note = await _signed_checkpoint(fetcher, log)
    held = await store.latest_checkpoint()
    held_size = held.size if held else 0
    if log.note is not None:
        await _check_known_root(
            store, log, log.size, log.root, log.note, "a checkpoint it cosigned"
        )
    if checkpoint.size <= held_size:
        await _check_known_root(
            store, log, checkpoint.size, checkpoint.root_hash, note, "the log's checkpoint"
        )
        return SyncResult(held_size, 0)
    count = await store.leaf_count()
    if count > checkpoint.size:
        raise MirrorError(
            f"the mirror holds {count} entries but the log's checkpoint only {checkpoint.size}"
        )
    frontier = Frontier.from_hashes(count, await store.hashes(root_coords(count)))
    position = count
    while position < checkpoint.size:
        end = min(checkpoint.size, (position // TILE_WIDTH + CHUNK_BUNDLES) * TILE_WIDTH)
        entries = await _entries(fetcher, position, end, checkpoint.size)
        nodes = frontier.extend(leaf_hash(e) for e in entries)
        await store.append(list(enumerate(entries, start=position)), nodes)
        position = end
        if progress is not None:
            await progress(position)
    if frontier.root() != checkpoint.root_hash:
        detail = (
            f"the entries the log serves do not produce the root of its signed checkpoint of "
            f"size {checkpoint.size}"
        )
        raise _disagreement("mirror_mismatch", log, held, note, detail)
    await store.add_checkpoint(StoredCheckpoint(checkpoint.size, checkpoint.root_hash, note))
    return SyncResult(checkpoint.size, checkpoint.size - count)
