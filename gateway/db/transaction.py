"""A database transaction that cannot leave the task pointing at a dead connection.

Tortoise's ``in_transaction`` puts its transaction client into the task's
context before ``BEGIN`` and takes it out after returning the connection to the
pool. When PostgreSQL goes away at the wrong moment, ``BEGIN`` fails (the
context manager never exits) or the pool's release raises (the reset is
skipped), and every later query of that task, and of every task it starts, goes
to the dead connection for good. A request task ends, so that heals; the ledger
sequencer is one long-lived task, so it stopped integrating until a restart.
:func:`transaction` wraps ``in_transaction`` and puts the task's connection back
whatever happens, and gives back what a failed ``BEGIN`` left taken (a pooled
connection on PostgreSQL, the one-writer lock on SQLite).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction


@contextlib.asynccontextmanager
async def transaction(connection_name: str = "default") -> AsyncIterator[BaseDBAsyncClient]:
    """``async with transaction() as conn``: commit on success, roll back on error."""
    outer = connections.get(connection_name)
    context = in_transaction(connection_name)
    try:
        client = await context.__aenter__()
    except BaseException:
        if connections.get(connection_name) is not outer:  # BEGIN failed after the take
            await _undo_failed_begin(context)
            connections.set(connection_name, outer)
        raise
    try:
        try:
            yield client
        except BaseException as exc:
            await context.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        await context.__aexit__(None, None, None)
    finally:
        if connections.get(connection_name) is not outer:  # the release failed
            connections.set(connection_name, outer)


async def _undo_failed_begin(context: Any) -> None:
    """Give back what a context that failed at ``BEGIN`` still holds.

    On PostgreSQL that is the connection taken from the pool; on SQLite it is the
    one-writer lock, which would otherwise stay taken and stop every later
    transaction of the process.
    """
    client: Any = getattr(context, "client", None)
    pool: Any = getattr(getattr(client, "_parent", None), "_pool", None)
    taken: Any = getattr(client, "_connection", None)
    if pool is not None and taken is not None:
        with contextlib.suppress(Exception):
            await pool.release(taken)
    lock: Any = getattr(context, "_trxlock", None)
    if lock is not None and lock.locked():
        lock.release()
