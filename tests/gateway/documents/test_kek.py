"""KEK rotation on a real SoftHSM token, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings, load_settings
from gateway.documents.kek import (
    KekConflict,
    RotationReport,
    kek_states,
    remove_kek,
    rotate_kek,
    version_label,
)
from gateway.documents.models import DocumentVersion, KekVersion
from gateway.errors import NotFound
from hsm import KekType, KeyAlgorithm, Token
from tests.gateway.databases import database_url, opened
from tests.gateway.documents.kek_rows import check_keys, seed_versions
from tests.gateway.ledger_rows import ledger_entries, raw_ledger_bytes


@dataclass
class Node:
    """A database, settings with a KEK label of its own, and the session token."""

    settings: Settings
    token: Token

    @property
    def kek(self) -> str:
        return self.settings.keys.kek

    async def rotate(self, **options: object) -> RotationReport:
        return await rotate_kek(self.token, self.settings, actor="person:keymaster", **options)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request: pytest.FixtureRequest, tmp_path: Path, token: Token) -> AsyncIterator[Node]:
    url = database_url(request, tmp_path)
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    kek = f"kek-{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        environ={
            "SEKISHO_DATA": str(data_dir),
            "SEKISHO_DATABASE_URL": url,
            "SEKISHO_KEYS_KEK": kek,
        }
    )
    await token.generate_key(kek, KeyAlgorithm.AES_256)
    try:
        async with opened(url):
            yield Node(settings, token)
    finally:
        for version in range(1, 6):
            await token.destroy_key(version_label(kek, version))


async def test_rotation_rewraps_every_data_key_to_the_same_key(node: Node) -> None:
    keys = await seed_versions(node.token, node.kek, 250)
    destroyed_id = next(iter(keys))
    await DocumentVersion.filter(id=destroyed_id).update(wrapped_key=None)
    del keys[destroyed_id]
    before = {r["id"]: bytes(r["wrapped_key"]) for r in await _rows(keys)}
    seen: list[tuple[int, int]] = []

    report = await node.rotate(batch=64, progress=lambda done, total: seen.append((done, total)))

    assert report.started and report.complete
    assert (report.new_version, report.new_label, report.old_version) == (2, node.kek + "-v2", 1)
    assert (report.rewrapped, report.skipped, report.remaining, report.failed) == (249, 0, 0, [])
    assert await check_keys(node.token, keys) == {2: 249}
    after = {r["id"]: bytes(r["wrapped_key"]) for r in await _rows(keys)}
    assert all(after[i] != before[i] for i in keys)
    shredded = await DocumentVersion.get(id=destroyed_id)
    assert shredded.wrapped_key is None and shredded.kek_version == 1  # not resurrected
    assert seen[0] == (0, 249) and seen[-1] == (249, 249)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert [(s.version, s.status, s.rows) for s in await kek_states(node.settings)] == [
        (1, "retiring", 0),
        (2, "active", 249),
    ]
    [entry] = await ledger_entries("key.rotated", key=node.kek)
    assert (entry["old_version"], entry["new_version"], entry["algorithm"]) == (1, 2, "aes-256")
    assert entry["actor"] == "person:keymaster"

    again = await node.rotate()
    assert (again.started, again.new_version, again.rewrapped) == (True, 3, 249)
    assert await check_keys(node.token, keys) == {3: 249}
    raw = await raw_ledger_bytes()
    assert not any(key.hex().encode() in raw for key in keys.values())


async def test_a_kek_type_the_token_cannot_unwrap_is_refused_before_any_row_moves(
    node: Node,
) -> None:
    # SoftHSM offers CKM_RSA_PKCS_OAEP but only with SHA-1: the new KEK fails its
    # wrap/unwrap test, is removed, and every document stays under the old KEK.
    keys = await seed_versions(node.token, node.kek, 10)
    with pytest.raises(KekConflict, match="failed its wrap/unwrap test") as caught:
        await node.rotate(kek_type=KekType.RSA_OAEP_SHA256)
    assert "CKM_RSA_PKCS_OAEP" in caught.value.message
    assert not await node.token.has_key(version_label(node.kek, 2))
    assert await check_keys(node.token, keys) == {1: 10}
    assert [(s.version, s.status) for s in await kek_states(node.settings)] == [(1, "active")]
    assert await ledger_entries("key.rotated", key=node.kek) == []
    moved = await node.rotate()  # the profile's choice (AES key wrap) still works
    assert moved.complete and await check_keys(node.token, keys) == {2: 10}


async def test_rotation_moves_documents_between_every_kek_type(node: Node) -> None:
    """AES key wrap -> ECDH P-256 -> AES key wrap: every data key the same, each rotation
    ledgered with the new KEK's algorithm, the old KEK's wraps no longer in use."""
    keys = await seed_versions(node.token, node.kek, 40)

    to_ecdh = await node.rotate(kek_type=KekType.ECDH_P256_HKDF_SHA256)
    assert to_ecdh.complete and to_ecdh.rewrapped == 40
    assert await node.token.kek_type(to_ecdh.new_label) is KekType.ECDH_P256_HKDF_SHA256
    assert await check_keys(node.token, keys) == {2: 40}
    rows = await DocumentVersion.filter(id__in=list(keys)).values_list("wrapped_key", flat=True)
    assert all(bytes(w)[0] == 0x01 and len(bytes(w)) == 106 for w in rows)

    back = await node.rotate(kek_type=KekType.AES_KEY_WRAP_PAD)
    assert back.complete and await check_keys(node.token, keys) == {3: 40}
    entries = await ledger_entries("key.rotated", key=node.kek)
    assert [(e["old_version"], e["new_version"], e["algorithm"]) for e in entries] == [
        (1, 2, "ec-p256"),
        (2, 3, "aes-256"),
    ]


async def test_an_interrupted_rotation_resumes_where_it_stopped(node: Node) -> None:
    keys = await seed_versions(node.token, node.kek, 30)
    first = await node.rotate(limit=12, batch=5)
    assert (first.rewrapped, first.remaining, first.complete) == (12, 18, False)
    assert await check_keys(node.token, keys) == {1: 18, 2: 12}  # every row readable meanwhile
    with pytest.raises(KekConflict, match="18 document version"):
        await remove_kek(node.token, node.settings, 1, settle_seconds=0)

    resumed = await node.rotate(batch=7)
    assert (resumed.started, resumed.new_version, resumed.rewrapped) == (False, 2, 18)
    assert resumed.complete
    assert await check_keys(node.token, keys) == {2: 30}
    assert len(await ledger_entries("key.rotated", key=node.kek)) == 1


async def test_a_crash_while_creating_the_new_kek_is_finished_by_the_next_run(node: Node) -> None:
    keys = await seed_versions(node.token, node.kek, 5)
    await node.rotate()
    # The process died after registering version 3 (and once, after creating its key too).
    await KekVersion.create(version=3, label=version_label(node.kek, 3), status="pending")
    report = await node.rotate()
    assert (report.started, report.new_version, report.rewrapped) == (True, 3, 5)
    await KekVersion.create(version=4, label=version_label(node.kek, 4), status="pending")
    await node.token.generate_key(version_label(node.kek, 4), KeyAlgorithm.AES_256)
    report = await node.rotate()
    assert (report.started, report.new_version, report.rewrapped) == (True, 4, 5)
    assert await check_keys(node.token, keys) == {4: 5}
    statuses = {s.version: s.status for s in await kek_states(node.settings)}
    assert statuses == {1: "retiring", 2: "retiring", 3: "retiring", 4: "active"}


async def test_a_concurrent_destroy_is_not_undone(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = await seed_versions(node.token, node.kek, 10)
    victim = sorted(keys)[4]
    victim_wrapped = bytes((await DocumentVersion.get(id=victim)).wrapped_key or b"")
    unwrap = node.token.unwrap_data_key

    async def unwrap_then_destroy(label: str, wrapped: bytes) -> bytes:
        key = await unwrap(label, wrapped)
        if wrapped == victim_wrapped:  # crypto-shredded between the read and the update
            await DocumentVersion.filter(id=victim).update(wrapped_key=None)
        return key

    monkeypatch.setattr(node.token, "unwrap_data_key", unwrap_then_destroy)
    report = await node.rotate(batch=4)
    assert (report.rewrapped, report.skipped, report.complete) == (9, 1, True)
    shredded = await DocumentVersion.get(id=victim)
    assert shredded.wrapped_key is None and shredded.kek_version == 1
    del keys[victim]
    monkeypatch.undo()
    assert await check_keys(node.token, keys) == {2: 9}


async def test_a_key_that_does_not_unwrap_is_reported_and_kept(node: Node) -> None:
    keys = await seed_versions(node.token, node.kek, 6)
    broken = sorted(keys)[2]
    row = await DocumentVersion.get(id=broken).prefetch_related("document")
    damaged = bytearray(row.wrapped_key or b"")
    damaged[5] ^= 0x01
    await DocumentVersion.filter(id=broken).update(wrapped_key=bytes(damaged))

    report = await node.rotate()
    assert report.failed == [(row.document.id, row.version)]
    assert (report.rewrapped, report.remaining, report.complete) == (5, 0, False)
    still = await DocumentVersion.get(id=broken)
    assert (still.kek_version, still.wrapped_key) == (1, bytes(damaged))
    [alert] = await ledger_entries("alert.raised", document=row.document.id)
    assert (alert["alert"], alert["detail_code"], alert["version"]) == (
        "integrity",
        "wrapped_key",
        row.version,
    )
    with pytest.raises(KekConflict, match="1 document version"):
        await remove_kek(node.token, node.settings, 1, settle_seconds=0)
    resumed = await node.rotate()  # still there, still reported, nothing else to do
    assert (resumed.started, resumed.rewrapped, len(resumed.failed)) == (False, 0, 1)


async def test_remove_kek(node: Node) -> None:
    keys = await seed_versions(node.token, node.kek, 4)
    await node.rotate()
    with pytest.raises(KekConflict, match="is active"):
        await remove_kek(node.token, node.settings, 2)
    with pytest.raises(KekConflict, match=r"was retired \d+ s ago; uploads sealed under it"):
        await remove_kek(node.token, node.settings, 1)
    with pytest.raises(NotFound):
        await remove_kek(node.token, node.settings, 9)
    await KekVersion.filter(version=2).update(created_at=datetime.now(UTC) - timedelta(hours=1))

    label, removed = await remove_kek(node.token, node.settings, 1, actor="person:keymaster")
    assert (label, removed) == (node.kek, True)
    assert not await node.token.has_key(node.kek)
    assert await node.token.has_key(node.kek + "-v2")
    assert (await KekVersion.get(version=1)).status == "removed"
    assert await remove_kek(node.token, node.settings, 1) == (node.kek, False)
    [entry] = await ledger_entries("key.removed", key=node.kek)
    assert (entry["version"], entry["actor"]) == (1, "person:keymaster")
    assert await check_keys(node.token, keys) == {2: 4}


async def test_one_rotation_at_a_time(node: Node) -> None:
    await seed_versions(node.token, node.kek, 40)
    results = await asyncio.gather(
        node.rotate(batch=2), node.rotate(batch=2), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, KekConflict)]
    done = [r for r in results if isinstance(r, RotationReport)]
    assert len(refused) == 1 and "another KEK rotation" in refused[0].message
    assert len(done) == 1 and done[0].rewrapped == 40


async def _rows(keys: dict[int, bytes]) -> list[dict[str, Any]]:
    return await DocumentVersion.filter(id__in=list(keys)).values("id", "wrapped_key")
