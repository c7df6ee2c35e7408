"""Recognising a database outage (server down, restarting or unreachable) in any exception,
a busy SQLite writer lock, and a value the database refused.

Such failures reach handlers from deep inside the ORM and its drivers, wrapped
or raw; the error middleware answers an outage or a busy lock with 503 instead of
a 500 (the next request, on a fresh pool connection, succeeds once the server is
back), and a refused value with 400.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

from asyncpg.exceptions import (
    DataError,
    InternalClientError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from tortoise.exceptions import DBConnectionError, ValidationError

OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    socket.gaierror,  # the database host name does not resolve
    DBConnectionError,  # Tortoise could not connect
    PostgresConnectionError,  # SQLSTATE class 08: the connection failed or was closed
    OperatorInterventionError,  # class 57: shutting down, starting up, terminated
    # asyncpg's "another operation is in progress" on a pooled connection whose server
    # went away mid-statement (seen in the restart test); the pool replaces it
    InternalClientError,
)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what it was raised from, up to eight deep (not an unbounded walk)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def is_database_outage(exc: BaseException) -> bool:
    """True when the exception, or one it was raised from, says the database is unreachable."""
    return any(isinstance(seen, OUTAGE_TYPES) for seen in causes(exc))


def is_database_busy(exc: BaseException) -> bool:
    """True when SQLite gave up waiting for another writer's lock ("database is locked")."""
    return any(
        isinstance(seen, sqlite3.OperationalError) and "locked" in str(seen) for seen in causes(exc)
    )


REFUSED_VALUE_TYPES: tuple[type[BaseException], ...] = (
    DataError,  # SQLSTATE class 22: a NUL in text, a number out of range, a bad date
    ValidationError,  # Tortoise's own field check: longer than the column, out of range
)


def is_refused_value(exc: BaseException) -> bool:
    """True when the database or the ORM refused a value as it was given: the caller's input
    that no check before it caught (the error middleware answers 400, not 500)."""
    return any(isinstance(seen, REFUSED_VALUE_TYPES) for seen in causes(exc))
