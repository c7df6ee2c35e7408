"""A transaction that holds a named lock row, for check-then-act across processes.

``async with serialised("accounts") as conn:`` begins a transaction whose first
statement writes the ``node_state`` row ``lock.accounts``. On PostgreSQL that
takes the row's lock until the commit, so every other transaction serialised
on the same name waits, in this process or any other on the database, and
then reads what the previous one committed. On SQLite the first write takes
the database's one write lock (this process's other tasks already wait for
Tortoise's transaction lock), so the same holds. Checks made inside the block
(the last enabled administrator, a name still free, a token still live) stay
true until the writes that depend on them are committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tortoise.backends.base.client import BaseDBAsyncClient

from gateway.db.sql import for_connection
from gateway.db.transaction import transaction

_TAKE = (
    "INSERT INTO node_state (key, value) VALUES (?, '') "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


@contextlib.asynccontextmanager
async def serialised(name: str) -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction that runs alone among those serialised on ``name``."""
    async with transaction() as conn:
        await conn.execute_query(for_connection(_TAKE, conn), [f"lock.{name}"])
        yield conn
