"""Failure counters for password checks, reserved atomically before the check runs.

Each account name and each client address has one ``sign_in_throttle`` row.
An attempt first *reserves* a slot with one conditional ``UPDATE`` (it adds one
to ``pending`` only while ``failures + pending`` is below the limit and no
lock-out is in force), then verifies the password, then settles: a failure
moves its slot from ``pending`` to ``failures`` (and the failure that reaches
the limit sets the lock-out, again with one conditional ``UPDATE``); a success
gives its slot back (and, for an account, clears its failures).

So however many attempts arrive at once, in one process or in several on one
database, at most ``limit`` of them are ever checked before the lock-out: the
row is the serialisation point (PostgreSQL row lock, SQLite's one writer), not
a lock in this process. A window (``window`` since the first attempt after a
quiet period) or an ended lock-out starts the count again; a reservation that
a crash never settled is forgotten when its window ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from gateway.db.sql import for_connection

# Every statement is written out whole (only ``?`` placeholders, never interpolation).
# "Stale" below is (window_start <= ? OR (locked_until > 0 AND locked_until <= ?)):
# the window ended or the lock-out is over, so the count starts again.
_RESERVE = (
    "UPDATE sign_in_throttle SET failures = CASE WHEN "
    "(window_start <= ? OR (locked_until > 0 AND locked_until <= ?)) "
    "THEN 0 ELSE failures END, pending = CASE WHEN "
    "(window_start <= ? OR (locked_until > 0 AND locked_until <= ?)) "
    "THEN 1 ELSE pending + 1 END, locked_until = CASE WHEN "
    "(window_start <= ? OR (locked_until > 0 AND locked_until <= ?)) "
    "THEN 0 ELSE locked_until END, window_start = CASE WHEN "
    "(window_start <= ? OR (locked_until > 0 AND locked_until <= ?)) "
    "THEN ? ELSE window_start END "
    "WHERE scope = ? AND subject = ? AND ("
    "(window_start <= ? OR (locked_until > 0 AND locked_until <= ?)) "
    "OR (locked_until = 0 AND failures + pending < ?))"
)
_CREATE = (
    "INSERT INTO sign_in_throttle (scope, subject, failures, pending, window_start, "
    "locked_until) VALUES (?, ?, 0, 0, 0, 0) ON CONFLICT (scope, subject) DO NOTHING"
)
_FAILED = (
    "UPDATE sign_in_throttle SET failures = failures + 1, "
    "pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END "
    "WHERE scope = ? AND subject = ?"
)
_LOCK = (
    "UPDATE sign_in_throttle SET locked_until = ? "
    "WHERE scope = ? AND subject = ? AND locked_until = 0 AND failures >= ?"
)
_RELEASE = (
    "UPDATE sign_in_throttle SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END "
    "WHERE scope = ? AND subject = ?"
)
_RELEASE_AND_CLEAR = (
    "UPDATE sign_in_throttle SET failures = 0, "
    "pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END "
    "WHERE scope = ? AND subject = ?"
)
_PURGE = (
    "DELETE FROM sign_in_throttle WHERE pending = 0 AND window_start <= ? AND locked_until <= ?"
)
_LOCKED_UNTIL = "SELECT locked_until FROM sign_in_throttle WHERE scope = ? AND subject = ?"
_UNLOCK = (
    "UPDATE sign_in_throttle SET failures = 0, locked_until = 0, window_start = 0 "
    "WHERE scope = ? AND subject = ? AND locked_until > ?"
)


def millis(moment: datetime) -> int:
    """Milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def from_millis(value: int) -> datetime:
    """The UTC time of a millisecond count."""
    return datetime.fromtimestamp(value / 1000, UTC)


@dataclass(frozen=True)
class Counter:
    """One throttled subject: an account name or an address, and its limit."""

    scope: str  # "account" or "address"
    subject: str
    limit: int


@dataclass(frozen=True)
class Refused:
    """A reservation that was refused, and until when the subject stays locked."""

    counter: Counter
    until: datetime


class Throttle:
    """Reserves, settles and locks counters with single conditional statements."""

    def __init__(self, window: timedelta, lockout: timedelta) -> None:
        self.window = window
        self.lockout = lockout

    @staticmethod
    def _conn() -> BaseDBAsyncClient:
        conn: BaseDBAsyncClient = connections.get("default")
        return conn

    async def _run(self, query: str, values: list[object]) -> int:
        conn = self._conn()
        changed, _ = await conn.execute_query(for_connection(query, conn), values)
        return int(changed)

    async def reserve(self, counter: Counter, now: datetime) -> Refused | None:
        """Take one slot of ``counter``; None when taken, else why not and until when."""
        at = millis(now)
        stale = [at - int(self.window.total_seconds() * 1000), at]
        values: list[object] = [*stale, *stale, *stale, *stale, at]
        values += [counter.scope, counter.subject, *stale, counter.limit]
        if await self._run(_RESERVE, values):
            return None
        # No row yet (the first attempt for this subject), or refused: make sure the
        # row exists (another attempt may be making it right now) and try once more.
        await self._run(_CREATE, [counter.scope, counter.subject])
        if await self._run(_RESERVE, values):
            return None
        return Refused(counter, await self._locked_until(counter, now))

    async def _locked_until(self, counter: Counter, now: datetime) -> datetime:
        conn = self._conn()
        rows = await conn.execute_query_dict(
            for_connection(_LOCKED_UNTIL, conn), [counter.scope, counter.subject]
        )
        until = int(rows[0]["locked_until"]) if rows else 0
        # Every slot is taken by attempts still being checked: refuse as if locked,
        # since the last of them may well lock it.
        return from_millis(until) if until > millis(now) else now + self.lockout

    async def failed(self, counter: Counter, now: datetime) -> datetime | None:
        """Count a failure on a reserved slot; the lock-out's end if this one set it."""
        key: list[object] = [counter.scope, counter.subject]
        await self._run(_FAILED, key)
        until = now + self.lockout
        if await self._run(_LOCK, [millis(until), *key, counter.limit]):
            return until
        return None

    async def succeeded(self, counter: Counter, *, clear: bool) -> None:
        """Give a reserved slot back after a success (``clear``: forget the failures)."""
        await self._run(_RELEASE_AND_CLEAR if clear else _RELEASE, [counter.scope, counter.subject])

    async def release(self, counter: Counter) -> None:
        """Give a reserved slot back without a decision (the attempt went no further)."""
        await self._run(_RELEASE, [counter.scope, counter.subject])

    async def purge(self, now: datetime) -> int:
        """Delete counters with nothing left to count (window over, no lock, nothing pending).

        Safe beside reservations: a counter in use has a fresh window, a lock or a
        pending slot, and a deleted one is made again by the next reservation.
        """
        at = millis(now)
        return await self._run(_PURGE, [at - int(self.window.total_seconds() * 1000), at])


async def locked_until(scope: str, subject: str, now: datetime) -> datetime | None:
    """When the lock-out of ``subject`` ends, or None when it is not locked out now."""
    conn: BaseDBAsyncClient = connections.get("default")
    rows = await conn.execute_query_dict(for_connection(_LOCKED_UNTIL, conn), [scope, subject])
    until = int(rows[0]["locked_until"]) if rows else 0
    return from_millis(until) if until > millis(now) else None


async def unlock(scope: str, subject: str, now: datetime) -> bool:
    """End a lock-out in force and forget its failures (attempts being checked keep their
    slots); False when ``subject`` was not locked out."""
    conn: BaseDBAsyncClient = connections.get("default")
    changed, _ = await conn.execute_query(
        for_connection(_UNLOCK, conn), [scope, subject, millis(now)]
    )
    return bool(changed)
