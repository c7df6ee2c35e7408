"""A database made by an earlier release gains the columns added since, once, with back-fills."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.models import Model

from gateway.auth.principals import ApiClient
from gateway.db.sql import for_connection
from gateway.db.upgrade import ADDED_COLUMNS, ONE_PENDING, add_missing_columns, add_missing_indexes
from gateway.documents.approvals import close_duplicates
from gateway.documents.models import ApprovalRequest
from gateway.ledger.entries import make_entry, open_entry
from gateway.ledger.models import OpeningRow
from gateway.ledger.queued import QueuedLedger
from gateway.ledger.store import TortoiseLedgerStore
from gateway.signing.models import AnchorRecord
from gateway.tlog.merkle import leaf_hash
from tests.gateway.databases import database_url, opened
from tests.gateway.ledger_rows import ledger_entries


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[None]:
    async with opened(database_url(request, tmp_path)):
        yield


async def anchor(client: str, subject: str, sequence: int) -> None:
    await AnchorRecord.create(
        id=uuid.uuid4(),
        owner=client,
        subject=subject,
        subject_sha256=subject.encode().hex()[:64],
        sequence=sequence,
        kind="part",
        hash="sha256",
        digest="00" * 32,
        metadata_sha256="0" * 64,
        client=client,
        entry=b"{}",
        leaf_hash="0" * 64,
        queue_id=sequence,
    )


MODELS: dict[str, type[Model]] = {"anchor_record": AnchorRecord, "api_client": ApiClient}


async def without_column(table: str, column: str) -> None:
    """Drop ``column``; on SQLite remake a table whose unique key holds it (it cannot drop it)."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite" and table == "anchor_record":
        _, rows = await connection.execute_query(f"PRAGMA table_info({table})")
        present = {str(row["name"]) for row in rows}  # earlier drops already took some
        kept = ", ".join(
            c for c in sorted(MODELS[table]._meta.db_fields) if c != column and c in present
        )
        await connection.execute_script(
            f"CREATE TABLE old_{table} AS SELECT {kept} FROM {table}; DROP TABLE {table}; "  # noqa: S608
            f"ALTER TABLE old_{table} RENAME TO {table}"
        )
    else:
        await connection.execute_script(f"ALTER TABLE {table} DROP COLUMN {column}")


async def test_columns_of_earlier_releases_are_added_and_filled(database: None) -> None:
    assert await add_missing_columns() == []  # today's schema: nothing to do
    await anchor("depot", "part:1", 1)
    await anchor("unit", "part:1", 2)  # an old chain extended by another client
    for spec in ADDED_COLUMNS:  # as a database of the first release had them
        await without_column(spec.table, spec.column)

    added = await add_missing_columns()

    assert added == [f"{spec.table}.{spec.column}" for spec in ADDED_COLUMNS]
    owners = {r.sequence: r.owner for r in await AnchorRecord.all()}
    assert owners == {1: "depot", 2: "depot"}  # the chain is its first writer's
    client = await ApiClient.create(name="mirror", scopes=["ledger-read"])
    assert (await ApiClient.get(id=client.id)).chain_writers == []
    assert await add_missing_columns() == []  # once only


async def test_openings_of_the_earlier_release_stay_readable(database: None) -> None:
    """The previous release kept openings in ledger_opening; after the upgrade the leaves
    carry them, and a queued entry of that release is still opened after integration."""
    connection = connections.get("default")
    integrated = make_entry("auth.sign_in", "node-a", principal="alice", outcome="ok")
    queued = make_entry("auth.sign_in", "node-a", principal="bob", outcome="refused")
    for table in ("ledger_leaf", "ledger_pending"):
        await without_column(table, "opening")
    # what the earlier release wrote: bytes in the rows, openings beside them
    old_leaf = "INSERT INTO ledger_leaf (idx, data, leaf_hash, queue_id) VALUES (?, ?, ?, ?)"
    old_queue = "INSERT INTO ledger_pending (id, data) VALUES (?, ?)"
    await connection.execute_query(
        for_connection(old_leaf, connection),
        [0, bytes(integrated), leaf_hash(integrated).hex(), -1],
    )
    await connection.execute_query(for_connection(old_queue, connection), [7, bytes(queued)])
    for entry in (integrated, queued):
        await OpeningRow.create(leaf_hash=leaf_hash(entry).hex(), opening=entry.opening)

    assert await add_missing_columns() == ["ledger_pending.opening", "ledger_leaf.opening"]

    _, rows = await connection.execute_query("SELECT opening FROM ledger_leaf WHERE idx = 0")
    assert bytes(rows[0]["opening"]) == integrated.opening  # copied into the leaf's row
    store = TortoiseLedgerStore()
    ((queue_id, data),) = await store.take_pending(10)
    assert (queue_id, data) == (7, bytes(queued))
    found = await store.openings([leaf_hash(integrated), leaf_hash(queued)])
    assert open_entry(integrated, found[leaf_hash(integrated)])["principal"] == "alice"
    assert open_entry(queued, found[leaf_hash(queued)])["principal"] == "bob"  # from the old table


async def test_duplicate_pending_requests_of_an_earlier_release_are_closed(
    database: None,
) -> None:
    """An earlier release could store two pending requests for one document and action;
    the upgrade keeps the oldest pending, closes the newer as stale (ledgered), and then
    the one-pending index refuses a third."""
    start = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    document = str(uuid.uuid4())

    async def pending(minutes: int, action: str = "destroy") -> ApprovalRequest:
        return await ApprovalRequest.create(
            id=str(uuid.uuid4()),
            document_id=document,
            version=1,
            action=action,
            requested_by="person:olivia",
            requested_at=start + timedelta(minutes=minutes),
            expires_at=start + timedelta(minutes=minutes + 10),
        )

    newer, older, other = await pending(2), await pending(1), await pending(3, "downgrade")
    ledger = QueuedLedger("node-a")

    assert await close_duplicates(ledger) == 1
    assert await add_missing_indexes() == [ONE_PENDING.name]

    statuses = {r.id: (r.status, r.decided_by) for r in await ApprovalRequest.all()}
    assert statuses == {
        older.id: ("pending", ""),
        other.id: ("pending", ""),
        newer.id: ("stale", "init"),
    }
    [closed] = await ledger_entries("approval.refused", request=newer.id)
    assert (closed["reason_code"], closed["actor"]) == ("duplicate", "init")
    with pytest.raises(IntegrityError):
        await pending(4)
    assert await close_duplicates(ledger) == 0
    assert await add_missing_indexes() == []  # once only
