"""Recognising a database outage (server down, restarting or unreachable) in any exception.

Such failures reach handlers from deep inside the ORM and its drivers, wrapped
or raw; the error middleware answers them with 503 instead of a 500, and the
next request, on a fresh pool connection, succeeds once the server is back.
"""

from __future__ import annotations

import socket
import sqlite3

from asyncpg.exceptions import (
    InternalClientError,
    OperatorInterventionError,
    PostgresConnectionError,
)
from tortoise.exceptions import DBConnectionError

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


def is_database_outage(exc: BaseException) -> bool:
    """True when the exception, or one it was raised from, says the database is unreachable."""
    seen: BaseException | None = exc
    for _ in range(8):  # causes and contexts, not an unbounded walk
        if seen is None:
            return False
        if isinstance(seen, OUTAGE_TYPES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_database_busy(exc: BaseException) -> bool:
    """True when SQLite gave up waiting for another writer's lock ("database is locked")."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, sqlite3.OperationalError) and "locked" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
