"""Tortoise's SQLite backend with writes handed over in turn between processes.

Configured as the engine ``gateway.db.sqlite_engine`` (see :mod:`gateway.db.setup`).
Every write transaction, and every write statement outside one, holds the
database's :class:`~gateway.db.writer_lock.WriterLock` (taken after the
process's own connection lock, so the order is always the same). Reads do not
take it: WAL lets them run beside a writer. Transactions begin ``IMMEDIATE``,
so a transaction that reads before it writes can never find, at its first
write, that another process wrote in between.

A read outside a transaction that finds the process's one connection taken (an
upload's rows, the sequencer's batch, a group commit) goes to a second,
read-only connection instead of queueing behind that transaction. Each such read
sees everything committed before it started, as it did on the one connection; a
transaction's own reads stay on its connection. When the connection is free,
reads use it as before (a second thread there cost CPU under B5).

The busiest write transactions (the sequencer's batch, queued ledger entries)
go through :meth:`TurnTakingSqliteClient.write_at_once` instead: the whole
transaction is one function run on a thread of its own, with its own
connection, so it costs one hop from the event loop instead of one per
statement plus BEGIN and COMMIT. Under load each hop waits its turn on a busy
loop while the writer lock, which every other process is waiting for, stays
taken. That thread also takes and gives back the writer lock itself, around the
transaction: no event-loop turn is spent holding it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import aiosqlite
from tortoise.backends.base.client import ConnectionWrapper, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.exceptions import TransactionManagementError

from gateway.db.turn_lock import TurnLock
from gateway.db.writer_lock import WAIT_SECONDS, WriterLock

log = logging.getLogger("sekisho.db")
_READS = ("SELECT", "EXPLAIN", "VALUES")
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_writing", default=False)
Result = TypeVar("Result")


def is_write(query: str) -> bool:
    """True unless the statement only reads (SELECT, EXPLAIN, VALUES)."""
    return not query.lstrip(" \t\r\n(").upper().startswith(_READS)


class TurnTakingSqliteClient(SqliteClient):
    """A SQLite client whose writes hold the cross-process writer lock."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        super().__init__(file_path, **kwargs)
        self._lock: TurnLock = TurnLock()
        self._wait_seconds = float(kwargs.get("busy_timeout", WAIT_SECONDS * 1000)) / 1000
        self.writer_lock = _writer_lock_for(file_path, self._wait_seconds)
        self._reader: aiosqlite.Connection | None = None
        self._reader_lock = asyncio.Lock()
        self._batch_writer: sqlite3.Connection | None = None  # used on _batch_thread only
        self._batch_thread: concurrent.futures.ThreadPoolExecutor | None = None

    async def create_connection(self, with_db: bool) -> None:
        """Open the connection, and the writer lock beside the database file."""
        if self.writer_lock is None and self._connection is None:  # opened again after close
            self.writer_lock = _writer_lock_for(self.filename, self._wait_seconds)
        await super().create_connection(with_db)

    async def close(self) -> None:
        """Close the connection and the writer lock (its files stay for other processes)."""
        await super().close()
        async with self._reader_lock:
            if self._reader is not None:
                await self._reader.close()
                self._reader = None
        if self._batch_thread is not None:
            async with self._lock:  # after any batch still running
                thread, self._batch_thread = self._batch_thread, None
                await asyncio.get_running_loop().run_in_executor(thread, self._close_batch_writer)
                thread.shutdown(wait=False)
        if self.writer_lock is not None:
            self.writer_lock.close()
            self.writer_lock = None

    async def write_at_once(
        self, work: Callable[[sqlite3.Connection], Result], *, first: bool = False
    ) -> Result:
        """Run ``work`` as one write transaction (BEGIN IMMEDIATE ... COMMIT) in one hop.

        ``work`` runs on a thread of its own, with a connection of its own, while
        this process's connection lock and the writer lock are held; an exception
        from it rolls the transaction back and is raised here. A caller cancelled
        meanwhile leaves the transaction to finish: the locks are given back then.
        ``first`` waits for the connection ahead of other writes (the sequencer).
        """
        loop = asyncio.get_running_loop()
        await self._lock.acquire(first=first)
        try:
            if self._batch_thread is None:
                self._batch_thread = concurrent.futures.ThreadPoolExecutor(1, "sqlite-batch")
            done = loop.run_in_executor(self._batch_thread, self._in_one_transaction, work)
        except BaseException:
            self._lock.release()
            raise
        done.add_done_callback(lambda _: self._lock.release())
        return await asyncio.shield(done)

    def _in_one_transaction(self, work: Callable[[sqlite3.Connection], Result]) -> Result:
        """On the batch thread: the writer lock is taken and given back here, not on the
        event loop, so other processes wait for the transaction only."""
        if self._batch_writer is None:
            self._batch_writer = self._open_batch_writer()
        connection = self._batch_writer
        lock = self.writer_lock
        with lock.held_on_this_thread() if lock is not None else contextlib.nullcontext():
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        return result

    def _open_batch_writer(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.filename, isolation_level=None)
        connection.row_factory = sqlite3.Row
        for pragma, value in self.pragmas.items():
            connection.execute(f"PRAGMA {pragma}={value}")
        return connection

    def _close_batch_writer(self) -> None:
        if self._batch_writer is not None:
            self._batch_writer.close()
            self._batch_writer = None

    def acquire_connection(self) -> ConnectionWrapper[Any]:
        """The process's connection, and the writer lock too when the statement writes."""
        if _writing.get():
            return _WritingConnection(self._lock, self)
        return super().acquire_connection()

    def _in_transaction(self) -> TransactionContext:
        return _TurnTakingTransactionContext(_TurnTakingTransaction(self), self._lock)

    async def execute_insert(self, query: str, values: list[Any]) -> int:
        """INSERT outside a transaction, holding the writer lock."""
        with _statement_writes(True):
            row_id: int = await super().execute_insert(query, values)
        return row_id

    async def execute_many(self, query: str, values: list[list[Any]]) -> None:
        """A statement for many rows outside a transaction, holding the writer lock."""
        with _statement_writes(True):
            await super().execute_many(query, values)

    async def execute_script(self, query: str) -> None:
        """A script (schema changes) outside a transaction, holding the writer lock."""
        with _statement_writes(True):
            await super().execute_script(query)

    async def execute_query(
        self, query: str, values: list[Any] | None = None
    ) -> tuple[int, Sequence[dict[str, Any]]]:
        """One statement; a write holds the writer lock, a read goes to the read connection."""
        writes = is_write(query)
        if self._reads_apart(writes):
            rows = await self._read(query, values)
            return len(rows), rows
        with _statement_writes(writes):
            answer: tuple[int, Sequence[dict[str, Any]]] = await super().execute_query(
                query, values
            )
        return answer

    async def execute_query_dict(
        self, query: str, values: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """One statement, rows as dicts; a write holds the writer lock, a read goes apart."""
        writes = is_write(query)
        if self._reads_apart(writes):
            return [dict(row) for row in await self._read(query, values)]
        with _statement_writes(writes):
            rows: list[dict[str, Any]] = await super().execute_query_dict(query, values)
        return rows

    def _reads_apart(self, writes: bool) -> bool:
        """Read on the read connection while the writing one is taken (else no thread hop more)."""
        return not writes and self._lock.locked() and self.filename != ":memory:"

    @translate_exceptions
    async def _read(self, query: str, values: list[Any] | None) -> list[Any]:
        query = query.replace("\x00", "'||CHAR(0)||'")  # as Tortoise's client does
        async with self._reader_lock:
            if self._reader is None:
                self._reader = await _open_reader(self.filename)
            return list(await self._reader.execute_fetchall(query, values))


def one_hop_writer(connection: object) -> TurnTakingSqliteClient | None:
    """The SQLite client that can write in one hop, unless inside a transaction (or not SQLite)."""
    if isinstance(connection, TurnTakingSqliteClient) and connection.filename != ":memory:":
        return connection
    return None


def sqlite_writer(connection: object) -> TurnTakingSqliteClient:
    """:func:`one_hop_writer` for a write that never runs inside another transaction."""
    writer = one_hop_writer(connection)
    if writer is None:
        raise TypeError(
            f"a one-hop SQLite write needs the database's own client, not {connection!r}"
        )
    return writer


@contextlib.contextmanager
def _statement_writes(writes: bool) -> Iterator[None]:
    """Within: the statement about to run writes (so the connection takes the writer lock)."""
    token = _writing.set(writes)
    try:
        yield
    finally:
        _writing.reset(token)


def _writer_lock_for(file_path: str, wait_seconds: float) -> WriterLock | None:
    """The database's writer lock; None in memory or where its files cannot be opened."""
    if file_path == ":memory:":
        return None
    try:
        return WriterLock(file_path + "-writer", wait_seconds)
    except OSError as exc:  # e.g. another account's lock files: SQLite's own locking still holds
        log.warning(
            "SQLite writer lock %s-writer unavailable (%s); writers wait in SQLite's busy handler",
            file_path,
            exc.strerror or exc,
        )
        return None


async def _open_reader(filename: str) -> aiosqlite.Connection:
    """A read-only connection to the database file (WAL: it never waits for the writer)."""
    reader = await aiosqlite.connect(filename, isolation_level=None)
    reader.row_factory = sqlite3.Row
    await reader.execute("PRAGMA query_only=ON")
    await reader.execute("PRAGMA busy_timeout=10000")
    return reader


class _WritingConnection(ConnectionWrapper[Any]):
    """The process's connection lock, then the writer lock, released in reverse."""

    __slots__ = ("_writer",)

    def __init__(self, lock: Any, client: TurnTakingSqliteClient) -> None:
        super().__init__(lock, client)
        self._writer: WriterLock | None = None

    async def __aenter__(self) -> Any:
        connection = await super().__aenter__()  # opens the connection (and lock) if closed
        self._writer = cast(TurnTakingSqliteClient, self.client).writer_lock
        try:
            if self._writer is not None:
                await self._writer.acquire()
        except BaseException:
            await super().__aexit__(None, None, None)
            raise
        return connection

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if self._writer is not None:
            self._writer.release()
        await super().__aexit__(exc_type, exc_val, exc_tb)


class _TurnTakingTransaction(SqliteTransactionWrapper):
    """A transaction that waits its turn for the writer lock, then begins IMMEDIATE."""

    def __init__(self, connection: TurnTakingSqliteClient) -> None:
        super().__init__(connection)
        self._writer: WriterLock | None = None

    async def begin(self) -> None:
        """Take the writer lock, then the database's write lock."""
        self._writer = cast(TurnTakingSqliteClient, self._parent).writer_lock
        if self._writer is not None:
            await self._writer.acquire()
        try:
            if self._connection.in_transaction:  # Tortoise commits first; a hop only if needed
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
