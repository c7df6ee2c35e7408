"""Tortoise's SQLite backend with writes handed over in turn between processes.

Configured as the engine ``gateway.db.sqlite_engine`` (see :mod:`gateway.db.setup`).
Every write transaction, and every write statement outside one, holds the
database's :class:`~gateway.db.writer_lock.WriterLock` (taken after the
process's own connection lock, so the order is always the same). Reads do not
take it: WAL lets them run beside a writer. Transactions begin ``IMMEDIATE``,
so a transaction that reads before it writes can never find, at its first
write, that another process wrote in between.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import ConnectionWrapper, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError

from gateway.db.writer_lock import WriterLock

_READS = ("SELECT", "EXPLAIN", "VALUES")
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_writing", default=False)


def is_write(query: str) -> bool:
    """True unless the statement only reads (SELECT, EXPLAIN, VALUES)."""
    return not query.lstrip(" \t\r\n(").upper().startswith(_READS)


class TurnTakingSqliteClient(SqliteClient):
    """A SQLite client whose writes hold the cross-process writer lock."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self.writer_lock: WriterLock | None = (
            WriterLock(file_path + "-writer") if file_path != ":memory:" else None
        )

    async def close(self) -> None:
        """Close the connection; the lock files stay for the next process."""
        await super().close()
        if self.writer_lock is not None:
            self.writer_lock.release()

    def acquire_connection(self) -> ConnectionWrapper[Any]:
        """The process's connection, and the writer lock too when the statement writes."""
        if _writing.get() and self.writer_lock is not None:
            return _WritingConnection(self._lock, self, self.writer_lock)
        return super().acquire_connection()

    def _in_transaction(self) -> TransactionContext:
        return _TurnTakingTransactionContext(_TurnTakingTransaction(self), self._lock)

    async def execute_insert(self, query: str, values: list[Any]) -> int:
        """INSERT outside a transaction, holding the writer lock."""
        token = _writing.set(True)
        try:
            row_id: int = await super().execute_insert(query, values)
            return row_id
        finally:
            _writing.reset(token)

    async def execute_many(self, query: str, values: list[list[Any]]) -> None:
        """A statement for many rows outside a transaction, holding the writer lock."""
        token = _writing.set(True)
        try:
            await super().execute_many(query, values)
        finally:
            _writing.reset(token)

    async def execute_script(self, query: str) -> None:
        """A script (schema changes) outside a transaction, holding the writer lock."""
        token = _writing.set(True)
        try:
            await super().execute_script(query)
        finally:
            _writing.reset(token)

    async def execute_query(
        self, query: str, values: list[Any] | None = None
    ) -> tuple[int, Sequence[dict[str, Any]]]:
        """One statement; a write holds the writer lock."""
        token = _writing.set(is_write(query))
        try:
            answer: tuple[int, Sequence[dict[str, Any]]] = await super().execute_query(
                query, values
            )
            return answer
        finally:
            _writing.reset(token)

    async def execute_query_dict(
        self, query: str, values: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """One statement, rows as dicts; a write holds the writer lock."""
        token = _writing.set(is_write(query))
        try:
            rows: list[dict[str, Any]] = await super().execute_query_dict(query, values)
            return rows
        finally:
            _writing.reset(token)


class _WritingConnection(ConnectionWrapper[Any]):
    """The process's connection lock, then the writer lock, released in reverse."""

    __slots__ = ("_writer",)

    def __init__(self, lock: Any, client: SqliteClient, writer: WriterLock) -> None:
        super().__init__(lock, client)
        self._writer = writer

    async def __aenter__(self) -> Any:
        connection = await super().__aenter__()
        try:
            await self._writer.acquire()
        except BaseException:
            await super().__aexit__(None, None, None)
            raise
        return connection

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self._writer.release()
        await super().__aexit__(exc_type, exc_val, exc_tb)


class _TurnTakingTransaction(SqliteTransactionWrapper):
    """A transaction that waits its turn for the writer lock, then begins IMMEDIATE."""

    def __init__(self, connection: TurnTakingSqliteClient) -> None:
        super().__init__(connection)
        self._writer = connection.writer_lock

    async def begin(self) -> None:
        """Take the writer lock, then the database's write lock."""
        if self._writer is not None:
            await self._writer.acquire()
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self.release_writer()
            raise TransactionManagementError(exc) from exc
        except BaseException:
            self.release_writer()
            raise

    async def rollback(self) -> None:
        """Roll back and let the next writer in."""
        try:
            await super().rollback()
        finally:
            self.release_writer()

    async def commit(self) -> None:
        """Commit and let the next writer in."""
        try:
            await super().commit()
        finally:
            self.release_writer()

    def release_writer(self) -> None:
        """Give back the writer lock (a no-op when not held)."""
        if self._writer is not None:
            self._writer.release()


class _TurnTakingTransactionContext(SqliteTransactionContext):
    """Tortoise's SQLite transaction context, sure to give the writer lock back."""

    __slots__ = ()

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            await super().__aexit__(exc_type, exc_val, exc_tb)
        finally:
            self.connection.release_writer()


client_class = TurnTakingSqliteClient
