"""Portal sessions: random 256-bit ids, stored as SHA-256, with idle and absolute time-outs.

A session id is created at every sign-in (never carried over from before it),
so a planted id is useless. Each request that presents an id resolves it to
the person *as they are now*: a disabled account or an expired session
resolves to nothing. ``last_seen_at`` is written at most once a minute.

CSRF tokens are derived from the browser's secret cookie (the session id, or
before sign-in a separate random cookie) with HMAC, so they need no storage
and a page from another site can neither read nor compute them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.auth.models import PortalSession
from gateway.auth.principals import Principal

SESSION_ID_BYTES = 32
MAX_COOKIE_LENGTH = 64
_CSRF_CONTEXT = b"sekisho portal csrf v1"


def new_secret() -> str:
    """A fresh 256-bit random value, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def session_digest(session_id: str) -> str:
    """The stored form of a session id (ids are random, so a plain hash suffices)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    """The CSRF token bound to a browser's secret cookie value."""
    mac = hmac.new(secret.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_matches(secret: str | None, token: str | None) -> bool:
    """True when ``token`` is the CSRF token of ``secret`` (constant time)."""
    if not secret or not token or len(token) > MAX_COOKIE_LENGTH:
        return False
    return hmac.compare_digest(csrf_token(secret).encode(), token.encode())


def plausible_secret(value: str | None) -> bool:
    """A cookie value shaped like one of ours (cheap check before any lookup)."""
    return bool(value) and len(value or "") <= MAX_COOKIE_LENGTH


@dataclass(frozen=True)
class SessionPolicy:
    """Time-outs: since the last request (idle) and since sign-in (absolute)."""

    idle: timedelta
    absolute: timedelta
    touch_every: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class ActiveSession:
    """A resolved session and its person."""

    row: PortalSession
    person: Principal


class SessionStore:
    """Creates, resolves and ends portal sessions in the database."""

    def __init__(self, policy: SessionPolicy) -> None:
        self.policy = policy

    async def create(self, person: Principal, method: str, source: str) -> str:
        """A new session for ``person``; returns the id for the cookie (shown only here)."""
        session_id = new_secret()
        now = datetime.now(UTC)
        await PortalSession.create(
            id_hash=session_digest(session_id),
            principal=person,
            method=method,
            source=source[:64],
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.absolute,
        )
        return session_id

    async def resolve(self, session_id: str | None) -> ActiveSession | None:
        """The live session for an id, or None (unknown, timed out or account disabled)."""
        if not plausible_secret(session_id):
            return None
        assert session_id is not None
        digest = session_digest(session_id)
        row = await PortalSession.get_or_none(id_hash=digest).prefetch_related("principal")
        if row is None:
            return None
        now = datetime.now(UTC)
        person: Principal = row.principal
        if row.expires_at <= now or row.last_seen_at + self.policy.idle <= now or person.disabled:
            await PortalSession.filter(id_hash=digest).delete()
            return None
        if now - row.last_seen_at >= self.policy.touch_every:
            row.last_seen_at = now
            await PortalSession.filter(id_hash=digest).update(last_seen_at=now)
        return ActiveSession(row, person)

    async def step_up(self, session_id: str, method: str) -> None:
        """Note that a session proved a strong factor (a security key) after sign-in."""
        await PortalSession.filter(id_hash=session_digest(session_id)).update(step_up=method)

    async def end(self, session_id: str | None) -> bool:
        """End one session; True if it existed."""
        if not plausible_secret(session_id):
            return False
        assert session_id is not None
        return bool(await PortalSession.filter(id_hash=session_digest(session_id)).delete())

    async def end_all(self, principal_id: int, *, keep: str | None = None) -> int:
        """End every session of a person (except ``keep``); returns how many."""
        query = PortalSession.filter(principal_id=principal_id)
        if keep:
            query = query.exclude(id_hash=session_digest(keep))
        return int(await query.delete())

    async def purge_expired(self) -> int:
        """Delete sessions past their absolute or idle time-out."""
        now = datetime.now(UTC)
        expired = await PortalSession.filter(expires_at__lte=now).delete()
        idle = await PortalSession.filter(last_seen_at__lte=now - self.policy.idle).delete()
        return int(expired) + int(idle)
