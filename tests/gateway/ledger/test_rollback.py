"""A database ledger rolled back behind the node's back is loud at the next start.

The node keeps its newest signed checkpoint on the token; deleting the newest
ledger rows, or restoring an older copy of the database file, while the node is
stopped must halt writes, fail ``/readyz`` with the reason, show officers the
alert and make ``sekisho ledger verify`` fail.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import asyncpg
import pytest
from tortoise import connections

from gateway.auth.principals import NodeState
from gateway.auth.tokens import issue_token
from gateway.db.sql import for_connection
from gateway.errors import LedgerRolledBack
from gateway.ledger.entries import make_entry
from gateway.ledger.rollback import INSTANCE_KEY, STARTED, TokenCheckpoint, history_finding
from gateway.ledger.store import TortoiseLedgerStore
from gateway.oversight import alerts
from gateway.tlog.merkle import leaf_hash
from hsm import Token
from tests.gateway.databases import database_url, opened
from tests.gateway.ledger.conftest import LedgerNode, MakeNode
from tests.web.conftest import person


def database_file(node: LedgerNode) -> Path:
    return Path(node.settings.database_url.removeprefix("sqlite://"))


async def stop(node: LedgerNode) -> None:
    await node.client.close()


def delete_newest(database: Path, keep: int, *, instance: bool = False) -> None:
    """What a DBA could do: drop every leaf and checkpoint beyond ``keep`` entries (and,
    with ``instance``, the row naming the ledger's instance, to pass for a first start)."""
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM ledger_leaf WHERE idx >= ?", (keep,))
        db.execute("DELETE FROM ledger_checkpoint WHERE size > ?", (keep,))
        if instance:
            db.execute("DELETE FROM node_state WHERE key = 'ledger_instance'")


async def halted(node: LedgerNode) -> str:
    """Wait for the node's rollback alarm (generously: a loaded machine); its reason."""
    for _ in range(6000):
        if node.ledger.rollback is not None:
            return node.ledger.rollback
        await asyncio.sleep(0.01)
    raise AssertionError("the node did not notice the rollback")


async def assert_loud(node: LedgerNode, kept: int, found: int) -> None:
    reason = await halted(node)
    assert f"holds {found} entries" in reason and f"says {kept}" in reason
    with pytest.raises(LedgerRolledBack) as refused:
        await node.ledger.record("record.anchored", client="t", digest="0" * 64)
    assert refused.value.status == 503
    # A read that needs an access entry is not served: 503 with a JSON reason.
    token = await issue_token(principal=await person(f"p{uuid.uuid4().hex[:8]}"))
    read = await node.client.get(
        f"/api/v1/documents/{uuid.uuid4()}/content", headers={"Authorization": f"Bearer {token}"}
    )
    assert read.status == 503
    body = await read.json()
    assert body["error"] == "ledger_rolled_back" and "rolled back" in body["message"]
    anonymous = await node.get_json("/readyz", status=503)
    assert anonymous["checks"]["ledger_history"] == {"ok": False}  # the reason: for watchers
    watcher = {"Authorization": f"Bearer {await node.person_token('admin')}"}
    ready = await node.get_json("/readyz", status=503, headers=watcher)
    assert ready["checks"]["ledger_history"]["ok"] is False
    assert "rolled back" in ready["checks"]["ledger_history"]["error"]
    metrics = await (await node.client.get("/metrics")).text()
    assert "sekisho_ledger_rolled_back 1" in metrics
    now = datetime.now(UTC)
    found_alerts = await alerts.collect(node.ledger, None, since=now - timedelta(hours=1), now=now)
    assert found_alerts.rollback == reason and found_alerts.count >= 1


async def test_deleting_the_newest_entries_halts_the_next_start(make_node: MakeNode) -> None:
    node = await make_node()
    keep = await node.append(5)
    size = await node.append(5)
    await stop(node)
    delete_newest(database_file(node), keep)

    restarted = await make_node()
    await assert_loud(restarted, size, keep)


async def test_deleting_the_instance_row_too_still_halts_the_next_start(
    make_node: MakeNode,
) -> None:
    """The log's first entry names its instance, so without the row the next start
    still finds the token's checkpoint instead of passing for a first start."""
    node = await make_node()
    keep = await node.append(5)
    size = await node.append(5)
    await stop(node)
    delete_newest(database_file(node), keep, instance=True)

    restarted = await make_node()
    await assert_loud(restarted, size, keep)


@pytest.mark.parametrize("instance", [False, True], ids=["entries", "entries-and-instance"])
async def test_deleting_the_newest_entries_on_postgres_halts_the_next_start(
    make_node: MakeNode, pg_database_url: str, instance: bool
) -> None:
    node = await make_node(pg_database_url)
    keep = await node.append(5)
    size = await node.append(5)
    await stop(node)
    db = await asyncpg.connect(pg_database_url)
    try:
        await db.execute("DELETE FROM ledger_leaf WHERE idx >= $1", keep)
        await db.execute("DELETE FROM ledger_checkpoint WHERE size > $1", keep)
        if instance:
            await db.execute("DELETE FROM node_state WHERE key = 'ledger_instance'")
    finally:
        await db.close()

    restarted = await make_node(pg_database_url)
    await assert_loud(restarted, size, keep)


async def test_restoring_an_older_database_copy_halts_the_next_start(
    make_node: MakeNode, tmp_path: Path
) -> None:
    node = await make_node()
    older_size = await node.append(3)
    await stop(node)
    backup = tmp_path / "backup.db"
    shutil.copy(database_file(node), backup)
    node = await make_node()
    size = await node.append(4)
    await stop(node)
    shutil.copy(backup, database_file(node))
    for suffix in ("-wal", "-shm"):
        await asyncio.to_thread(Path(str(database_file(node)) + suffix).unlink, missing_ok=True)

    restarted = await make_node()
    await assert_loud(restarted, size, older_size)


async def test_an_untouched_database_starts_and_writes(make_node: MakeNode) -> None:
    node = await make_node()
    size = await node.append(3)
    await stop(node)
    restarted = await make_node()
    assert await restarted.append(2) == size + 2
    ready = await restarted.get_json("/readyz")
    assert ready["checks"]["ledger_history"] == {"ok": True}


class NoKeptCheckpoints:
    """Stands in for a token that keeps no checkpoint (only ``read_data`` is used)."""

    async def read_data(self, label: str) -> list[bytes]:
        return []


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[None]:
    async with opened(database_url(request, tmp_path)):
        yield


async def first_entry(entry: bytes) -> None:
    """Store ``entry`` as the log's leaf 0 (with no checkpoint)."""
    connection = connections.get("default")
    insert = "INSERT INTO ledger_leaf (idx, data, leaf_hash, queue_id) VALUES (?, ?, ?, ?)"
    await connection.execute_query(
        for_connection(insert, connection), [0, entry, leaf_hash(entry).hex(), -1]
    )


def keeper() -> TokenCheckpoint:
    return TokenCheckpoint(cast(Token, NoKeptCheckpoints()), "origin", TortoiseLedgerStore())


async def test_a_log_of_an_earlier_release_without_its_instance_row_starts(
    database: None,
) -> None:
    """The documented limit: a first entry older than ``ledger.started`` names no
    instance, so a missing row is a first start (a new id), as before."""
    await first_entry(make_entry("record.anchored", "node-a", client="t", digest="0" * 64))
    finding, _ = await history_finding(TortoiseLedgerStore(), keeper())
    assert finding is None
    assert await NodeState.get_or_none(key=INSTANCE_KEY) is not None


async def test_an_instance_row_that_contradicts_the_first_entry_is_a_finding(
    database: None,
) -> None:
    started = make_entry(STARTED, "node-a", origin="origin")
    await first_entry(started)
    kept = keeper()
    assert await kept.bind() is False  # bound by the log itself: not a first start
    assert await NodeState.get_or_none(key=INSTANCE_KEY) is None
    assert kept.label == f"sekisho-checkpoint:origin:{leaf_hash(started).hex()[:32]}"

    await NodeState.create(key=INSTANCE_KEY, value="0" * 32)
    finding, _ = await history_finding(TortoiseLedgerStore(), keeper())
    assert finding is not None and "instance id was altered" in finding
