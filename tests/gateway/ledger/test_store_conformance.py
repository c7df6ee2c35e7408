"""One conformance suite for the ledger store, run against SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.db.setup import close_database, open_database
from gateway.db.transaction import transaction
from gateway.ledger.sequencer import load_frontier, sequence_once
from gateway.ledger.store import (
    IntegrationBatch,
    NewLeaf,
    SequencingConflict,
    StoredCheckpoint,
    TortoiseLedgerStore,
)
from gateway.tlog.checkpoint import Checkpoint, open_signed_checkpoint
from gateway.tlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    assemble_proof,
    consistency_proof_coords,
    inclusion_proof_coords,
    leaf_hash,
    root_coords,
    root_from_hashes,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from gateway.tlog.note import Note, ed25519_key_id, format_note, signature_for

ORIGIN = "sekisho.example/conformance"


class SoftwareCheckpointSigner:
    """Signs checkpoints in software, so the store suite needs no token."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = ed25519_key_id(ORIGIN, self.public)

    async def sign(self, checkpoint: Checkpoint) -> str:
        text = checkpoint.to_text()
        signature = signature_for(ORIGIN, self.key_id, self.key.sign(text.encode()))
        return format_note(Note(text, [signature]))


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[TortoiseLedgerStore]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    await open_database(url, create_schema=True)
    yield TortoiseLedgerStore()
    await close_database()


def entries(count: int, tag: str = "e") -> list[bytes]:
    return [f'{{"n":{i},"tag":"{tag}","type":"record.anchored"}}'.encode() for i in range(count)]


async def test_enqueue_orders_and_counts(store: TortoiseLedgerStore) -> None:
    first = await store.enqueue(entries(3, "a"))
    second = await store.enqueue(entries(2, "b"))
    assert first == sorted(first) and second == sorted(second)
    assert max(first) < min(second)
    assert await store.pending_count() == 5
    pending = await store.take_pending(4)
    assert [qid for qid, _ in pending] == [*first, second[0]]
    assert pending[0][1] == entries(1, "a")[0]
    assert await store.enqueue([]) == []


async def queue_then_fail(store: TortoiseLedgerStore) -> None:
    async with transaction():
        await store.enqueue(entries(3, "dropped"))
        raise RuntimeError("rolled back")


async def test_entries_queued_in_a_transaction_go_with_it(store: TortoiseLedgerStore) -> None:
    """Inside a transaction the queue joins it (on SQLite, not a one-hop write of its own)."""
    async with transaction():
        inside = await store.enqueue(entries(2, "kept"))
    with pytest.raises(RuntimeError, match="rolled back"):
        await queue_then_fail(store)
    assert await store.pending_count() == 2
    outside = await store.enqueue(entries(1, "after"))
    assert [qid for qid, _ in await store.take_pending(10)] == [*inside, *outside]


async def test_integrate_writes_everything_in_one_step(store: TortoiseLedgerStore) -> None:
    signer = SoftwareCheckpointSigner()
    data = entries(37)
    await store.enqueue(data)
    frontier, result = await sequence_once(store, Frontier(), signer.sign, ORIGIN, 1000)
    assert result is not None
    assert frontier.size == 37
    assert sorted(result.indexes.values()) == list(range(37))
    assert await store.pending_count() == 0

    assert await store.leaves(0, 37) == data
    assert await store.leaves(35, 40) == data[35:]
    leaf_hashes = [leaf_hash(d) for d in data]
    assert await store.index_of_leaf_hash(leaf_hashes[12]) == 12
    assert await store.index_of_leaf_hash(b"\x00" * 32) is None
    assert await store.indexes_for_queue_ids(list(result.indexes)) == result.indexes

    latest = await store.latest_checkpoint()
    assert latest is not None and latest.size == 37
    assert latest.root == root_from_leaves(leaf_hashes)
    checkpoint, _ = open_signed_checkpoint(latest.note, ORIGIN, ORIGIN, signer.public)
    assert checkpoint.root_hash == latest.root
    assert root_from_hashes(37, await store.hashes(root_coords(37))) == latest.root


async def test_proofs_from_stored_hashes_verify(store: TortoiseLedgerStore) -> None:
    signer = SoftwareCheckpointSigner()
    frontier = Frontier()
    sizes: list[int] = []
    for batch in (5, 1, 20, 64, 3):
        await store.enqueue(entries(batch, f"b{len(sizes)}"))
        frontier, result = await sequence_once(store, frontier, signer.sign, ORIGIN, 1000)
        assert result is not None
        sizes.append(frontier.size)
    checkpoints = await store.checkpoints(0, 100)
    assert [c.size for c in checkpoints] == sizes
    all_leaves = [leaf_hash(d) for d in await store.leaves(0, frontier.size)]
    for size in sizes:
        root = root_from_leaves(all_leaves[:size])
        for index in range(0, size, 7):
            groups = inclusion_proof_coords(index, size)
            proof = assemble_proof(groups, await store.hashes(c for g in groups for c in g))
            verify_inclusion(all_leaves[index], index, size, proof, root)
    for old, new in itertools.pairwise(sizes):
        groups = consistency_proof_coords(old, new)
        proof = assemble_proof(groups, await store.hashes(c for g in groups for c in g))
        old_root = root_from_leaves(all_leaves[:old])
        verify_consistency(old, new, proof, old_root, root_from_leaves(all_leaves[:new]))


async def test_frontier_reloads_from_storage(store: TortoiseLedgerStore) -> None:
    signer = SoftwareCheckpointSigner()
    await store.enqueue(entries(300))
    frontier, _ = await sequence_once(store, Frontier(), signer.sign, ORIGIN, 1000)
    reloaded = await load_frontier(store)
    assert reloaded.size == frontier.size
    assert reloaded.root() == frontier.root()
    assert (await load_frontier(store)).hashes == frontier.hashes


async def test_stale_sequencer_is_refused_and_writes_nothing(store: TortoiseLedgerStore) -> None:
    signer = SoftwareCheckpointSigner()
    await store.enqueue(entries(4))
    stale = Frontier()
    await sequence_once(store, Frontier(), signer.sign, ORIGIN, 1000)
    await store.enqueue(entries(2, "late"))
    with pytest.raises(SequencingConflict):
        await sequence_once(store, stale, signer.sign, ORIGIN, 1000)
    assert await store.pending_count() == 2
    latest = await store.latest_checkpoint()
    assert latest is not None and latest.size == 4


async def test_never_two_checkpoints_for_one_size(store: TortoiseLedgerStore) -> None:
    signer = SoftwareCheckpointSigner()
    note = await signer.sign(Checkpoint(ORIGIN, 0, EMPTY_ROOT))
    await store.integrate(IntegrationBatch(0, [], [], StoredCheckpoint(0, EMPTY_ROOT, note)))
    other = await signer.sign(Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("extra",)))
    with pytest.raises(Exception):  # noqa: B017, PT011 - unique-key violation, driver-specific type
        await store.integrate(IntegrationBatch(0, [], [], StoredCheckpoint(0, EMPTY_ROOT, other)))
    latest = await store.latest_checkpoint()
    assert latest is not None and latest.note == note


async def test_binary_data_round_trips(store: TortoiseLedgerStore) -> None:
    signer = SoftwareCheckpointSigner()
    blob = bytes(range(256)) + os.urandom(64)
    queue_id = (await store.enqueue([blob]))[0]
    leaf = NewLeaf(0, queue_id, blob, leaf_hash(blob))
    frontier = Frontier()
    nodes = frontier.append(leaf.leaf_hash)
    note = await signer.sign(Checkpoint(ORIGIN, 1, frontier.root()))
    await store.integrate(
        IntegrationBatch(0, [leaf], nodes, StoredCheckpoint(1, frontier.root(), note))
    )
    assert await store.leaves(0, 1) == [blob]
