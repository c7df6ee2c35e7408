"""Portal sign-in: password (argon2id) or TLS client certificate, throttled and ledgered.

Throttling counts failed attempts per account name and per client address.
``max_failures`` failures within ``window`` lock that account name (or that
address) for ``lockout``; while locked, attempts are refused without looking
at the password. Failures before a lock ended, and (for an account) before its
last successful sign-in, are not counted again. A success from an address does
not reset the address's count, so one valid account cannot be used to keep
guessing another's password.

Every attempt is one ``auth.sign_in`` ledger entry (outcome granted or denied,
with a reason code) and every lock-out one ``auth.locked_out`` entry, written
before the answer (fail closed). Entries name the account only when it
exists, never carry the password, and the local ``sign_in_attempt`` table
keeps the attempts for throttling and officers' alerts.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from tortoise.expressions import Q

from gateway.auth.identity import Unauthenticated
from gateway.auth.models import PersonCertificate, SignInAttempt, SignInLock
from gateway.auth.passwords import hash_password, verify_password
from gateway.auth.principals import Principal
from gateway.auth.sessions import SessionStore
from gateway.errors import BadRequest, TooManyRequests
from gateway.ledger.entries import utc_timestamp
from gateway.ledger.queued import EntryRecorder

MAX_USERNAME = 64
MIN_PASSWORD = 12
MAX_PASSWORD = 256
UNKNOWN = "(unknown)"
FAILED_MESSAGE = "The username or password is not correct."


class SignInFailed(Unauthenticated):
    """Wrong credentials (deliberately vague about which part was wrong)."""

    code = "sign_in_failed"


class LockedOut(TooManyRequests):
    """Too many failed sign-ins from this account name or address."""

    code = "locked_out"

    def __init__(self, until: datetime, now: datetime) -> None:
        retry = max(1, math.ceil((until - now).total_seconds()))
        super().__init__(
            "Too many failed sign-ins. Sign-in is locked until "
            f"{until.strftime('%H:%M')} UTC; try again then or ask your security officer.",
            retry_after=retry,
        )
        self.until = until


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures (per account name, per address) in what window lock for how long."""

    max_failures: int = 5
    max_address_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in: the person and the new session id for the cookie."""

    person: Principal
    session_id: str
    method: str


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown accounts, so timing does not tell."""
    return hash_password("sekisho timing equaliser")


def clean_username(username: str) -> str:
    """The username as typed, trimmed, lower-cased and cut to a storable length."""
    return "".join(c for c in username.strip().lower() if c.isprintable())[:MAX_USERNAME]


class SignInService:
    """Checks credentials, throttles failures, ledgers every attempt, opens sessions."""

    def __init__(
        self, ledger: EntryRecorder, sessions: SessionStore, policy: ThrottlePolicy
    ) -> None:
        self._ledger = ledger
        self._sessions = sessions
        self.policy = policy

    async def with_password(self, username: str, password: str, source: str) -> SignedIn:
        """Sign in with a password; SignInFailed, LockedOut or a new session."""
        name = clean_username(username)
        source = source[:64]
        now = datetime.now(UTC)
        person = await Principal.get_or_none(username=name) if name else None
        await self._refuse_if_locked(name, person is not None, source, "password", now)
        stored = person.password_hash if person is not None and person.password_hash else None
        matches = await asyncio.to_thread(
            verify_password, stored or _dummy_hash(), password[:MAX_PASSWORD]
        )
        if person is None or stored is None or not matches or person.disabled:
            reason = (
                "unknown_account"
                if person is None
                else ("bad_password" if stored is None or not matches else "disabled")
            )
            await self._fail(name, person is not None, source, "password", reason, now)
            raise SignInFailed(FAILED_MESSAGE)
        return await self._succeed(person, source, "password", now)

    async def with_certificate(self, fingerprint: str, source: str) -> SignedIn:
        """Sign in with a TLS client certificate registered to an enabled person."""
        source = source[:64]
        now = datetime.now(UTC)
        subject = f"cert:{fingerprint[:16]}"
        await self._refuse_if_locked(subject, False, source, "certificate", now)
        row = await PersonCertificate.get_or_none(fingerprint=fingerprint.lower())
        person = await Principal.get_or_none(id=row.principal_id) if row is not None else None
        if person is None or person.disabled:
            reason = "unknown_certificate" if person is None else "disabled"
            name = person.username if person is not None else subject
            await self._fail(name, person is not None, source, "certificate", reason, now)
            raise SignInFailed("This certificate does not belong to an enabled account.")
        return await self._succeed(person, source, "certificate", now)

    async def person_for_certificate(self, fingerprint: str) -> Principal | None:
        """The enabled person a certificate is registered to (to offer certificate sign-in)."""
        row = await PersonCertificate.get_or_none(fingerprint=fingerprint.lower())
        if row is None:
            return None
        person = await Principal.get_or_none(id=row.principal_id)
        return person if person is not None and not person.disabled else None

    async def check_password(self, person: Principal, password: str, source: str) -> None:
        """Re-check a signed-in person's password (to change it); a failure counts."""
        matches = await asyncio.to_thread(
            verify_password, person.password_hash, password[:MAX_PASSWORD]
        )
        if not matches:
            now = datetime.now(UTC)
            await self._fail(person.username, True, source[:64], "password", "bad_password", now)
            raise BadRequest("The current password is not correct.", code="bad_password")

    async def change_password(
        self, person: Principal, current: str, new: str, repeated: str, *, source: str, keep: str
    ) -> None:
        """Change a person's own password; ledgered; their other sessions end."""
        check_new_password(person.username, current, new, repeated)
        await self.check_password(person, current, source)
        await self._ledger.record(
            "principal.changed",
            principal=person.username,
            actor=f"person:{person.username}",
            change="password_changed",
            fields=["password"],
            level=person.level,
            roles=sorted(person.roles),
            outcome="applied",
            source=source[:64],
        )
        person.password_hash = await asyncio.to_thread(hash_password, new)
        person.must_change_password = False
        await person.save(update_fields=["password_hash", "must_change_password", "updated_at"])
        await self._sessions.end_all(person.id, keep=keep)

    # ----- internals ---------------------------------------------------------------

    async def _succeed(
        self, person: Principal, source: str, method: str, now: datetime
    ) -> SignedIn:
        await self._ledger.record(
            "auth.sign_in",
            principal=person.username,
            method=method,
            outcome="granted",
            reason="granted",
            source=source,
        )
        await SignInAttempt.create(
            at=now,
            username=person.username,
            known=True,
            source=source,
            method=method,
            outcome="granted",
            reason="granted",
        )
        session_id = await self._sessions.create(person, method, source)
        return SignedIn(person, session_id, method)

    async def _refuse_if_locked(
        self, name: str, known: bool, source: str, method: str, now: datetime
    ) -> None:
        lock = (
            await SignInLock.filter(until__gt=now)
            .filter(Q(scope="account", subject=name) | Q(scope="address", subject=source))
            .order_by("-until")
            .first()
        )
        if lock is None:
            return
        await self._ledger.record(
            "auth.sign_in",
            principal=name if known else UNKNOWN,
            method=method,
            outcome="denied",
            reason=f"locked_{lock.scope}",
            source=source,
        )
        await SignInAttempt.create(
            at=now,
            username=name,
            known=known,
            source=source,
            method=method,
            outcome="locked",
            reason=f"locked_{lock.scope}",
        )
        raise LockedOut(lock.until, now)

    async def _fail(
        self, name: str, known: bool, source: str, method: str, reason: str, now: datetime
    ) -> None:
        await self._ledger.record(
            "auth.sign_in",
            principal=name if known else UNKNOWN,
            method=method,
            outcome="denied",
            reason=reason,
            source=source,
        )
        await SignInAttempt.create(
            at=now,
            username=name,
            known=known,
            source=source,
            method=method,
            outcome="denied",
            reason=reason,
        )
        locked_until: datetime | None = None
        for scope, subject in (("account", name), ("address", source)):
            until = await self._maybe_lock(scope, subject, name if known else UNKNOWN, now)
            if until is not None:
                locked_until = max(until, locked_until or until)
        if locked_until is not None:
            raise LockedOut(locked_until, now)

    async def _maybe_lock(
        self, scope: str, subject: str, principal: str, now: datetime
    ) -> datetime | None:
        since = now - self.policy.window
        last_lock = await SignInLock.filter(scope=scope, subject=subject).order_by("-until").first()
        if last_lock is not None and last_lock.until > since:
            since = last_lock.until
        if scope == "account":
            last_ok = (
                await SignInAttempt.filter(username=subject, outcome="granted")
                .order_by("-at")
                .first()
            )
            if last_ok is not None and last_ok.at > since:
                since = last_ok.at
            attempts = SignInAttempt.filter(outcome="denied", at__gt=since, username=subject)
        else:
            attempts = SignInAttempt.filter(outcome="denied", at__gt=since, source=subject)
        failures = await attempts.count()
        limit = self.policy.max_failures if scope == "account" else self.policy.max_address_failures
        if failures < limit:
            return None
        until = now + self.policy.lockout
        await self._ledger.record(
            "auth.locked_out",
            principal=principal,
            scope=scope,
            source=subject if scope == "address" else None,
            failures=failures,
            until=utc_timestamp(until),
        )
        await SignInLock.create(
            scope=scope, subject=subject, at=now, until=until, failures=failures
        )
        return until


def check_new_password(username: str, current: str, new: str, repeated: str) -> str:
    """The new password if acceptable, else BadRequest saying why."""
    if new != repeated:
        raise BadRequest("The two new passwords differ.", code="password_mismatch")
    if len(new) < MIN_PASSWORD:
        raise BadRequest(
            f"A password needs at least {MIN_PASSWORD} characters.", code="password_short"
        )
    if len(new) > MAX_PASSWORD:
        raise BadRequest(f"A password has at most {MAX_PASSWORD} characters.", code="password_long")
    if new == current or new.lower() == username.lower():
        raise BadRequest(
            "Choose a new password that differs from the old one and from your username.",
            code="password_weak",
        )
    return new
