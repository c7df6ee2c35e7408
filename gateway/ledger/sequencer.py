"""The sequencer step: a plain function over the store (Trillian style).

It takes the oldest queued entries, appends them to the frontier, signs one
checkpoint for the whole batch and writes everything in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tortoise.models import Model

from gateway.ledger.store import IntegrationBatch, LedgerStore, NewLeaf, StoredCheckpoint
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import Frontier, leaf_hash, root_coords

SignCheckpoint = Callable[[Checkpoint], Awaitable[str]]


@dataclass(frozen=True)
class Integrated:
    """What one step integrated: queue id -> index, and the new checkpoint."""

    indexes: dict[int, int]
    checkpoint: StoredCheckpoint


async def load_frontier(store: LedgerStore) -> Frontier:
    """Rebuild the frontier from the latest checkpoint's size and the stored hashes."""
    latest = await store.latest_checkpoint()
    size = latest.size if latest else 0
    if size == 0:
        return Frontier()
    return Frontier.from_hashes(size, await store.hashes(root_coords(size)))


def direct_queue_id(index: int) -> int:
    """The queue id of an entry integrated straight from memory (never queued): -(index+1)."""
    return -(index + 1)


def direct_index(queue_id: int) -> int:
    """The index of an entry whose (negative) queue id came from :func:`direct_queue_id`."""
    return -queue_id - 1


async def sequence_once(
    store: LedgerStore,
    frontier: Frontier,
    sign: SignCheckpoint,
    origin: str,
    limit: int,
    direct: Sequence[bytes] = (),
    beside: Sequence[Model | None] = (),
) -> tuple[Frontier, Integrated | None]:
    """Integrate queued entries (oldest first), then ``direct`` ones, up to ``limit`` in all.

    ``direct`` entries come from this process's own appends while it leads: they
    skip the queue table and are acknowledged once integrated, which is stronger
    than queued. They get the queue id :func:`direct_queue_id` of their index.
    ``beside`` holds, for each direct entry, a row written in the same transaction
    with that queue id as its ``ledger_queue_id`` (or None).
    """
    room = max(0, limit - len(direct))
    pending = await store.take_pending(room) if room else []
    if not pending and not direct:
        return frontier, None
    updated = frontier.copy()
    old_size = updated.size
    leaves: list[NewLeaf] = []
    nodes = []
    for queue_id, data in pending:
        index = old_size + len(leaves)
        digest = leaf_hash(data)
        leaves.append(NewLeaf(index, queue_id, data, digest))
        nodes.extend(updated.append(digest))
    rows: list[tuple[int, Model]] = []
    for data, row in zip(direct, beside or [None] * len(direct), strict=True):
        index = old_size + len(leaves)
        digest = leaf_hash(data)
        leaves.append(NewLeaf(index, direct_queue_id(index), data, digest))
        nodes.extend(updated.append(digest))
        if row is not None:
            rows.append((direct_queue_id(index), row))
    root = updated.root()
    note = await sign(Checkpoint(origin=origin, size=updated.size, root_hash=root))
    checkpoint = StoredCheckpoint(size=updated.size, root=root, note=note)
    await store.integrate(IntegrationBatch(old_size, leaves, nodes, checkpoint, rows))
    return updated, Integrated({leaf.queue_id: leaf.index for leaf in leaves}, checkpoint)
