"""transaction(): the task keeps a working connection when PostgreSQL drops at the wrong moment.

The faults are injected at the library seam (BEGIN failing, the pool's release
failing) because the real race, a server restart between two statements, is too
narrow to hit on demand; ``tests/gateway/faults/test_postgres_restart.py`` runs
the real restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import pytest
from tortoise import connections
from tortoise.backends.asyncpg.client import TransactionWrapper

from gateway.db.transaction import transaction
from gateway.db.writer_lock import WriterLock
from tests.gateway.databases import database_url, opened

POOL_MAX = 5  # Tortoise's default asyncpg pool size


async def create_probe() -> None:
    await connections.get("default").execute_script("CREATE TABLE probe (n INTEGER NOT NULL)")


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with opened(database_url(request, tmp_path)):
        await create_probe()
        yield str(request.param)


async def probe_count() -> int:
    rows = await connections.get("default").execute_query_dict("SELECT COUNT(*) AS n FROM probe")
    return int(rows[0]["n"])


async def commits_again(rows_after: int) -> None:
    """With the fault gone, a transaction in the same task commits a row."""
    async with transaction() as conn:
        await conn.execute_query("INSERT INTO probe (n) VALUES (1)")
    assert await probe_count() == rows_after


async def insert_then_fail() -> None:
    async with transaction() as conn:
        await conn.execute_query("INSERT INTO probe (n) VALUES (2)")
        raise RuntimeError("abandon")


async def test_commits_on_success_and_rolls_back_on_error(database: str) -> None:
    async with transaction() as conn:
        await conn.execute_query("INSERT INTO probe (n) VALUES (1)")
    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await probe_count() == 1
    assert connections.get("default") is not conn


@pytest.fixture
async def postgres(pg_database_url: str) -> AsyncIterator[None]:
    async with opened(pg_database_url):
        await create_probe()
        yield
        pool = pool_of_default()
        if pool.get_idle_size() != pool.get_size():
            pool.terminate()  # a leaked connection would make the graceful close wait forever


def pool_of_default() -> asyncpg.Pool:
    pool: asyncpg.Pool = getattr(connections.get("default"), "_pool")  # noqa: B009
    return pool


async def test_a_failed_begin_leaves_the_task_on_a_working_connection(
    postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = connections.get("default")

    async def dropped(self: TransactionWrapper) -> None:
        raise asyncpg.InterfaceError("connection is closed")

    monkeypatch.setattr(TransactionWrapper, "begin", dropped)
    pool = pool_of_default()
    for _ in range(POOL_MAX + 2):  # more failures than the pool has connections
        with pytest.raises(asyncpg.InterfaceError):
            async with transaction():
                pass
        assert connections.get("default") is before
        assert pool.get_idle_size() == pool.get_size(), "a failed BEGIN kept its connection"
    monkeypatch.undo()
    await commits_again(rows_after=1)


async def test_a_failed_release_leaves_the_task_on_a_working_connection(
    postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = connections.get("default")
    failures = 0

    async def reset_fails(self: asyncpg.pool.Pool, connection: Any, **kwargs: Any) -> None:
        nonlocal failures
        failures += 1
        connection._detach().terminate()  # what asyncpg does when the reset query fails
        raise asyncpg.ConnectionDoesNotExistError("connection was closed mid-operation")

    monkeypatch.setattr(asyncpg.pool.Pool, "release", reset_fails)
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        async with transaction() as conn:
            await conn.execute_query("INSERT INTO probe (n) VALUES (1)")
    assert failures == 1
    assert connections.get("default") is before
    monkeypatch.undo()
    await commits_again(rows_after=2)


async def test_a_failed_begin_on_sqlite_leaves_the_writer_locks_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "test.sqlite3"
    async with opened(f"sqlite://{path}"):
        await create_probe()
        before = connections.get("default")
        execute = aiosqlite.Connection.execute

        async def disk_error(self: aiosqlite.Connection, sql: str, *args: Any) -> Any:
            if sql.startswith("BEGIN"):
                raise OSError("disk I/O error")
            return await execute(self, sql, *args)

        monkeypatch.setattr(aiosqlite.Connection, "execute", disk_error)
        with pytest.raises(OSError, match="disk I/O error"):
            async with transaction():
                pass
        assert connections.get("default") is before
        monkeypatch.undo()
        # another process's view of the cross-process writer lock: free again
        other = WriterLock(f"{path}-writer")
        try:
            async with asyncio.timeout(30):
                await other.acquire()
            other.release()
        finally:
            other.close()
        # with the process's lock still taken this would wait for ever: the timeout fails it
        async with asyncio.timeout(30):
            await commits_again(rows_after=1)
