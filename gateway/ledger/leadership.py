"""Who may sequence: exactly one process per log.

On PostgreSQL leadership is a session advisory lock held on a dedicated
connection; if the holder dies its connection drops and the lock is free. On
SQLite it is an exclusive ``flock`` on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Protocol

import asyncpg


class Leadership(Protocol):
    """A lock that at most one sequencer holds."""

    async def try_acquire(self) -> bool:
        """Take the lock if free; True when held afterwards."""
        ...

    async def still_held(self) -> bool:
        """False once the lock may have passed to someone else."""
        ...

    async def release(self) -> None:
        """Give the lock up."""
        ...


def lock_key(origin: str) -> int:
    """A signed 64-bit advisory-lock key derived from the log origin."""
    digest = hashlib.sha256(b"sekisho-sequencer:" + origin.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class FileLeadership:
    """Leadership by an exclusive flock (SQLite deployments)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        """Non-blocking exclusive lock."""
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def still_held(self) -> bool:
        """A held flock cannot be taken away."""
        return self._fd is not None

    async def release(self) -> None:
        """Unlock and close."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PostgresLeadership:
    """Leadership by ``pg_try_advisory_lock`` on a connection of its own.

    A process that does not get the lock keeps its connection for the next try
    (a follower tries every few milliseconds while entries wait), and giving the
    lock up unlocks it before closing, so the next holder need not wait for the
    server to notice the closed session.
    """

    def __init__(self, dsn: str, key: int) -> None:
        self._dsn = dsn.replace("postgres://", "postgresql://", 1)
        self._key = key
        self._conn: asyncpg.Connection | None = None
        self._held = False

    async def try_acquire(self) -> bool:
        """Connect if needed and try the advisory lock."""
        if self._conn is None or self._conn.is_closed():
            self._held = False
            try:
                self._conn = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                self._conn = None
                return False
        if self._held:
            return True
        try:
            self._held = bool(
                await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key, timeout=5)
            )
        except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
            await self.release()
            return False
        return self._held

    async def still_held(self) -> bool:
        """True while the lock connection answers."""
        if not self._held or self._conn is None or self._conn.is_closed():
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
            await self.release()
            return False
        return True

    async def release(self) -> None:
        """Unlock (if held) and close the connection."""
        conn, self._conn = self._conn, None
        held, self._held = self._held, False
        if conn is None or conn.is_closed():
            return
        errors = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
        if held:
            with contextlib.suppress(*errors):
                await conn.execute("SELECT pg_advisory_unlock($1)", self._key, timeout=5)
        with contextlib.suppress(*errors):
            await conn.close(timeout=5)
