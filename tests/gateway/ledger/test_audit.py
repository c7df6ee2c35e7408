"""The ledger audit over the real database (SQLite and PostgreSQL) and over tlog-tiles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tortoise import connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from gateway.db.setup import close_database, open_database
from gateway.errors import NotFound
from gateway.ledger.audit.sources import DatabaseAuditSource, TileAuditSource
from gateway.ledger.audit.verify import AuditResult, AuditState, LogKey, audit
from gateway.ledger.models import CheckpointRow, LeafRow, NodeRow
from gateway.ledger.reads import tile_bytes
from gateway.ledger.sequencer import sequence_once
from gateway.ledger.store import IntegrationBatch, LedgerStore, StoredCheckpoint, pack_coord
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import EMPTY_ROOT, Coord, Frontier, leaf_hash
from gateway.tlog.note import Note, ed25519_key_id, format_note, signature_for
from gateway.tlog.tiles import parse_tile_path

ORIGIN = "sekisho.example/audit"
BATCHES = (5, 300, 1, 400)
SIZES = (0, 5, 305, 306, 706)


class SoftSigner:
    """Signs checkpoints in software so the audit suite runs without a token."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.log_key = LogKey(ORIGIN, self.public, ORIGIN)

    async def sign(self, checkpoint: Checkpoint) -> str:
        text = checkpoint.to_text()
        sig = signature_for(
            ORIGIN, ed25519_key_id(ORIGIN, self.public), self.key.sign(text.encode())
        )
        return format_note(Note(text, [sig]))


def entries(count: int, tag: str) -> list[bytes]:
    return [f'{{"n":{i},"tag":"{tag}","type":"record.anchored"}}'.encode() for i in range(count)]


def flip(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


async def grow(
    store: DatabaseAuditSource, signer: SoftSigner, frontier: Frontier, batches: Iterable[int]
) -> Frontier:
    """Integrate batches, one signed checkpoint each (the empty checkpoint first)."""
    if await store.latest_checkpoint() is None:
        note = await signer.sign(Checkpoint(ORIGIN, 0, EMPTY_ROOT))
        await store.integrate(IntegrationBatch(0, [], [], StoredCheckpoint(0, EMPTY_ROOT, note)))
    for number, batch in enumerate(batches):
        await store.enqueue(entries(batch, f"{frontier.size}-{number}"))
        frontier, _ = await sequence_once(store, frontier, signer.sign, ORIGIN, 1000)
    return frontier


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseAuditSource]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    await open_database(url, create_schema=True)
    EXECUTOR_CACHE.clear()  # Tortoise caches ORM SQL per connection name, not per backend
    yield DatabaseAuditSource()
    await close_database()
    EXECUTOR_CACHE.clear()


@pytest.fixture
async def signer() -> SoftSigner:
    return SoftSigner()


@pytest.fixture
async def log(store: DatabaseAuditSource, signer: SoftSigner) -> DatabaseAuditSource:
    await grow(store, signer, Frontier(), BATCHES)
    return store


def assert_finding(result: AuditResult, code: str, index: int, message: str) -> None:
    assert result.finding is not None, "the audit found nothing"
    assert (result.finding.code, result.finding.index) == (code, index), result.finding
    assert result.finding.message.startswith(message), result.finding.message


# --- the database ----------------------------------------------------------------------


async def test_intact_log_passes_in_small_chunks(
    log: DatabaseAuditSource, signer: SoftSigner
) -> None:
    seen: list[tuple[int, int]] = []
    result = await audit(log, signer.log_key, chunk=64, progress=lambda d, t: seen.append((d, t)))
    assert result.ok, result.finding
    assert (result.state.size, result.state.checkpoints, result.tree_size) == (706, 5, 706)
    assert seen[0] == (0, 706) and seen[-1] == (706, 706)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) > 706 // 64


async def test_empty_and_unsigned_logs(store: DatabaseAuditSource, signer: SoftSigner) -> None:
    result = await audit(store, signer.log_key)
    assert result.ok and result.tree_size == 0
    await LeafRow.create(idx=0, data=b"{}", leaf_hash=leaf_hash(b"{}").hex(), queue_id=1)
    assert_finding(await audit(store, signer.log_key), "leaf_unsigned", 0, "leaf 0:")


async def _leaf_data(index: int) -> None:
    row = await LeafRow.get(idx=index)
    await LeafRow.filter(idx=index).update(data=flip(bytes(row.data), 5))


async def _leaf_hash_column(index: int) -> None:
    await LeafRow.filter(idx=index).update(leaf_hash="00" * 32)


async def _node(level: int, index: int) -> None:
    row = await NodeRow.get(key=pack_coord((level, index)))
    await NodeRow.filter(key=row.key).update(hash=flip(bytes(row.hash), 31))


async def _checkpoint_note(size: int) -> None:
    row = await CheckpointRow.get(size=size)
    note = row.note
    position = note.rindex(" ") + 10  # inside the base64 signature
    swapped = "B" if note[position] != "B" else "C"
    await CheckpointRow.filter(size=size).update(
        note=note[:position] + swapped + note[position + 1 :]
    )


async def _raw(query: str) -> None:
    await connections.get("default").execute_query(query)


TAMPERING = [
    ("leaf-data", lambda: _leaf_data(123), "leaf_hash_mismatch", 123, "leaf 123: stored data"),
    ("leaf-hash", lambda: _leaf_hash_column(7), "leaf_hash_mismatch", 7, "leaf 7: stored data"),
    ("tree-leaf", lambda: _node(0, 200), "leaf_hash_mismatch", 200, "leaf 200: stored data"),
    (
        "node",
        lambda: _node(4, 3),
        "node_hash_mismatch",
        48,
        "node at level 4, index 3 (entries 48..63): stored hash does not match",
    ),
    (
        "node-gone",
        lambda: NodeRow.filter(key=pack_coord((2, 5))).delete(),
        "node_missing",
        20,
        "node at level 2, index 5 (entries 20..23)",
    ),
    ("leaf-gone", lambda: LeafRow.filter(idx=250).delete(), "leaf_missing", 250, "leaf 250:"),
    (
        "signature",
        lambda: _checkpoint_note(305),
        "checkpoint_signature",
        305,
        "checkpoint at size 305: signature invalid",
    ),
    (
        "root-column",
        lambda: CheckpointRow.filter(size=306).update(root=bytes(32)),
        "checkpoint_root",
        306,
        "checkpoint at size 306:",
    ),
    (
        "size-column",
        lambda: _raw("UPDATE ledger_checkpoint SET size = 304 WHERE size = 305"),
        "checkpoint_size",
        304,
        "checkpoint at size 304: the signed note is for size 305",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "code", "index", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in TAMPERING],
)
async def test_first_problem_is_named(
    log: DatabaseAuditSource,
    signer: SoftSigner,
    tamper: object,
    code: str,
    index: int,
    message: str,
) -> None:
    await tamper()  # type: ignore[operator]
    assert_finding(await audit(log, signer.log_key, chunk=100), code, index, message)


async def test_unsigned_extra_leaf(log: DatabaseAuditSource, signer: SoftSigner) -> None:
    await LeafRow.create(idx=706, data=b"{}", leaf_hash=leaf_hash(b"{}").hex(), queue_id=10**9)
    assert_finding(
        await audit(log, signer.log_key), "leaf_unsigned", 706, "leaf 706: stored beyond"
    )


async def test_a_signed_but_wrong_root_is_caught(
    log: DatabaseAuditSource, signer: SoftSigner
) -> None:
    forged_root = bytes(range(32))
    note = await signer.sign(Checkpoint(ORIGIN, 306, forged_root))
    await CheckpointRow.filter(size=306).update(note=note, root=forged_root)
    result = await audit(log, signer.log_key)
    assert_finding(result, "checkpoint_tree", 306, "checkpoint at size 306: the signed root")
    assert result.state.size == 305  # the last clean checkpoint


async def test_another_key_fails_at_the_first_checkpoint(log: DatabaseAuditSource) -> None:
    result = await audit(log, SoftSigner().log_key)
    assert_finding(result, "checkpoint_signature", 0, "checkpoint at size 0: signature invalid")


async def test_incremental_audit_resumes_and_full_pass_sees_old_changes(
    store: DatabaseAuditSource, signer: SoftSigner
) -> None:
    frontier = await grow(store, signer, Frontier(), (5, 300))
    first = await audit(store, signer.log_key)
    assert first.ok and first.state.size == 305 and first.state.checkpoints == 3
    await grow(store, signer, frontier, (1, 400))
    seen: list[int] = []
    second = await audit(store, signer.log_key, first.state, progress=lambda d, t: seen.append(d))
    assert second.ok and second.state.size == 706 and second.state.checkpoints == 5
    assert seen[0] == 305
    await _leaf_data(10)
    assert (await audit(store, signer.log_key, second.state)).ok  # old leaves are not re-read
    full = await audit(store, signer.log_key)
    assert_finding(full, "leaf_hash_mismatch", 10, "leaf 10:")
    assert full.state == AuditState(5, full.state.frontier, 2)
    again = await audit(store, signer.log_key, full.state)  # resumes before the problem
    assert_finding(again, "leaf_hash_mismatch", 10, "leaf 10:")


async def test_incremental_audit_notices_a_rollback(
    log: DatabaseAuditSource, signer: SoftSigner
) -> None:
    state = (await audit(log, signer.log_key)).state
    await CheckpointRow.filter(size=706).delete()
    result = await audit(log, signer.log_key, state)
    assert_finding(result, "checkpoint_rollback", 306, "checkpoint at size 306:")


# --- tlog-tiles ------------------------------------------------------------------------


class MemoryLog:
    """Leaves and every subtree hash in memory, read the way the tile handlers read a store."""

    def __init__(self, count: int) -> None:
        self.data = entries(count, "tiles")
        frontier = Frontier()
        self.nodes: dict[Coord, bytes] = dict(frontier.extend(leaf_hash(d) for d in self.data))
        self.root = frontier.root()
        self.size = count

    async def leaves(self, start: int, end: int) -> list[bytes]:
        return self.data[start:end]

    async def hashes(self, coords: Iterable[Coord]) -> dict[Coord, bytes]:
        return {c: self.nodes[c] for c in coords if c in self.nodes}


class MemoryFetcher:
    """Serves a MemoryLog as tlog-tiles, with optional damage."""

    def __init__(self, log: MemoryLog, note: str) -> None:
        self.log = log
        self.note = note
        self.missing: set[str] = set()
        self.truncated: set[str] = set()
        self.fetched: list[str] = []

    async def fetch(self, path: str) -> bytes | None:
        self.fetched.append(path)
        if path in self.missing:
            return None
        if path == "checkpoint":
            return self.note.encode()
        try:
            body = await tile_bytes(
                cast(LedgerStore, self.log), parse_tile_path(path), self.log.size
            )
        except NotFound:
            return None
        return body[:-1] if path in self.truncated else body


@pytest.fixture(scope="module")
def big_log() -> MemoryLog:
    return MemoryLog(65_536 + 300)  # a full level-1 tile, partial tiles on levels 0 to 2


async def fetcher_for(log: MemoryLog, signer: SoftSigner) -> MemoryFetcher:
    return MemoryFetcher(log, await signer.sign(Checkpoint(ORIGIN, log.size, log.root)))


async def test_tiles_verify_against_the_checkpoint(big_log: MemoryLog, signer: SoftSigner) -> None:
    fetcher = await fetcher_for(big_log, signer)
    result = await audit(TileAuditSource(fetcher), signer.log_key)
    assert result.ok, result.finding
    assert (result.state.size, result.state.checkpoints) == (big_log.size, 1)
    assert {"tile/1/000", "tile/1/001.p/1", "tile/2/000.p/1", "tile/0/257.p/44"} <= set(
        fetcher.fetched
    )
    assert "tile/entries/257.p/44" in fetcher.fetched


async def test_tiles_name_the_first_problem(big_log: MemoryLog, signer: SoftSigner) -> None:
    original = big_log.data[70]
    big_log.data[70] = flip(original, 3)
    try:
        result = await audit(TileAuditSource(await fetcher_for(big_log, signer)), signer.log_key)
    finally:
        big_log.data[70] = original
    assert_finding(result, "leaf_hash_mismatch", 70, "leaf 70: stored data")

    original = big_log.nodes[(8, 3)]
    big_log.nodes[(8, 3)] = bytes(32)
    try:
        result = await audit(TileAuditSource(await fetcher_for(big_log, signer)), signer.log_key)
    finally:
        big_log.nodes[(8, 3)] = original
    assert_finding(
        result, "node_hash_mismatch", 768, "node at level 8, index 3 (entries 768..1023)"
    )


@pytest.mark.parametrize(
    ("damage", "path", "code", "index"),
    [
        ("missing", "tile/entries/004", "tile_missing", 1024),
        ("missing", "tile/1/000.p/5", "tile_missing", 0),
        ("truncated", "tile/0/002", "tile_malformed", 512),
        ("truncated", "tile/entries/003", "bundle_malformed", 768),
    ],
)
async def test_tiles_the_log_fails_to_serve(
    damage: str, path: str, code: str, index: int, signer: SoftSigner
) -> None:
    log = MemoryLog(1300)
    fetcher = await fetcher_for(log, signer)
    getattr(fetcher, damage).add(path)
    result = await audit(TileAuditSource(fetcher), signer.log_key)
    assert_finding(result, code, index, path)


async def test_tiles_with_a_bad_checkpoint_signature(signer: SoftSigner) -> None:
    fetcher = await fetcher_for(MemoryLog(10), SoftSigner())
    result = await audit(TileAuditSource(fetcher), signer.log_key)
    assert_finding(result, "checkpoint_signature", 10, "checkpoint at size 10: signature invalid")
