"""Portal sign-in: password (argon2id), TLS client certificate or security key; throttled, ledgered.

Throttling counts failed attempts per account name and per client address
(:mod:`gateway.auth.throttle`). Every password check -- signing in, and
re-checking the current password to change it -- first reserves a slot on both
counters atomically in the database, so concurrent attempts, from one process
or several, cannot outrun the limit: ``max_failures`` failures lock that
account name (``max_address_failures`` that address) for ``lockout``, and while
locked, attempts are refused without looking at the password. A success clears
the account's failures but not the address's, so one valid account cannot be
used to keep guessing another's password.

The caller is told one thing for every failure (unknown name, wrong password,
disabled account): the same message and status, and argon2 runs for unknown
names too. Every attempt is one ``auth.sign_in`` ledger entry (outcome granted
or denied, with a reason code for officers) and every lock-out one
``auth.locked_out`` entry, written before the answer (fail closed). Entries
name the account only when it exists and never carry the password. The local
``sign_in_attempt`` table keeps the attempts for officers' alerts; a typed
name that is no account's is kept only as a tag (:mod:`gateway.auth.name_tags`)
and its look-up is never logged.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from gateway.auth.account import Account
from gateway.auth.identity import Unauthenticated
from gateway.auth.key_trail import trail_row
from gateway.auth.models import PersonCertificate, SignInAttempt, SignInLock
from gateway.auth.name_tags import name_key, tag_with
from gateway.auth.passwords import hash_password, verify_password
from gateway.auth.principals import Principal
from gateway.auth.security_keys import SecurityKeys, key_digest
from gateway.auth.sessions import SessionStore
from gateway.auth.throttle import Counter, Throttle
from gateway.errors import BadRequest, TooManyRequests
from gateway.ledger.entries import utc_timestamp
from gateway.ledger.queued import EntryRecorder
from gateway.logs import unlogged_queries

MAX_USERNAME = 64
MIN_PASSWORD = 12
MAX_PASSWORD = 256
UNKNOWN = "(unknown)"
FAILED_MESSAGE = "The username or password is not correct."
KEY_FAILED_MESSAGE = "The security key was not accepted. Try again, or sign in another way."
STEP_UP_FAILED_MESSAGE = "The security key was not accepted. Use a key registered to you."
_ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # gateway.accounts.rules.USERNAME_RE


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
        self,
        ledger: EntryRecorder,
        sessions: SessionStore,
        policy: ThrottlePolicy,
        keys: SecurityKeys | None = None,
    ) -> None:
        self._ledger = ledger
        self._sessions = sessions
        self._keys = keys
        self.policy = policy
        self._throttle = Throttle(policy.window, policy.lockout)
        self._name_key: bytes | None = None

    async def with_password(self, username: str, password: str, source: str) -> SignedIn:
        """Sign in with a password; SignInFailed, LockedOut or a new session."""
        name = clean_username(username)
        source = source[:64]
        now = datetime.now(UTC)
        person = await self._account(name)
        known = person is not None
        subject = person.username if person is not None else await self._tag(name)
        counters = await self._reserve(subject, known, source, "password", now)
        try:
            stored = person.password_hash if person is not None else ""
            matches = await asyncio.to_thread(
                verify_password, stored or _dummy_hash(), password[:MAX_PASSWORD]
            )
        except BaseException:
            await self._release(counters)
            raise
        if person is None or not stored or not matches or person.disabled:
            reason = (
                "unknown_account"
                if person is None
                else ("bad_password" if not stored or not matches else "disabled")
            )
            await self._fail(subject, known, source, "password", reason, now, counters)
            raise SignInFailed(FAILED_MESSAGE)
        return await self._succeed(person, source, "password", now, counters)

    async def with_certificate(self, fingerprint: str, source: str) -> SignedIn:
        """Sign in with a TLS client certificate registered to an enabled person."""
        source = source[:64]
        now = datetime.now(UTC)
        subject = f"cert:{fingerprint[:16]}"
        counters = await self._reserve(subject, False, source, "certificate", now)
        try:
            row = await PersonCertificate.get_or_none(fingerprint=fingerprint.lower())
            person = await Principal.get_or_none(id=row.principal_id) if row is not None else None
        except BaseException:
            await self._release(counters)
            raise
        if person is None or person.disabled:
            reason = "unknown_certificate" if person is None else "disabled"
            name = person.username if person is not None else subject
            await self._fail(name, person is not None, source, "certificate", reason, now, counters)
            raise SignInFailed("This certificate does not belong to an enabled account.")
        return await self._succeed(person, source, "certificate", now, counters)

    async def with_security_key(
        self, credential: str, secret: str, origins: list[str], source: str
    ) -> SignedIn:
        """Sign in with a security key's assertion (username-less), throttled like passwords.

        The account counter is the key's owner (or, for a key nobody registered, the
        key's digest); every failure gets the same answer.
        """
        keys = self._require_keys()
        source = source[:64]
        now = datetime.now(UTC)
        key = await keys.find(credential)
        person = await Principal.get_or_none(id=key.principal_id) if key is not None else None
        known = person is not None
        subject = (
            person.username
            if person is not None
            else f"key:{key_digest(key.credential_id if key else credential[:256])[:16]}"
        )
        counters = await self._reserve(subject, known, source, "security_key", now)
        try:
            valid = await keys.verify_assertion(credential, secret, "sign_in", origins, key)
        except BaseException:
            await self._release(counters)
            raise
        if person is None or not valid or person.disabled:
            reason = (
                "unknown_key" if person is None else ("bad_assertion" if not valid else "disabled")
            )
            await self._fail(subject, known, source, "security_key", reason, now, counters)
            raise SignInFailed(KEY_FAILED_MESSAGE)
        return await self._succeed(person, source, "security_key", now, counters)

    async def step_up(
        self,
        person: Account,
        session_id: str,
        credential: str,
        secret: str,
        origins: list[str],
        source: str,
    ) -> None:
        """Step a session up with one of the person's own keys; throttled and ledgered.

        Failures count on the same counters as sign-in; each attempt is one
        ``auth.step_up`` entry.
        """
        keys = self._require_keys()
        source = source[:64]
        now = datetime.now(UTC)
        counters = await self._reserve(person.username, True, source, "step_up", now)
        try:
            key = await keys.find(credential)
            own = key if key is not None and key.principal_id == person.id else None
            valid = await keys.verify_assertion(credential, secret, "step_up", origins, own)
        except BaseException:
            await self._release(counters)
            raise
        if not valid:
            reason = "bad_assertion" if own is not None else "not_own_key"
            await self._fail(
                person.username, True, source, "step_up", reason, now, counters, "auth.step_up"
            )
            raise SignInFailed(STEP_UP_FAILED_MESSAGE)
        try:
            recorded = await self._record_attempt(
                person.username, True, source, "step_up", "granted", "", now, "auth.step_up"
            )
            await self._trail(person, "step_up", source, recorded)
        except BaseException:
            await self._release(counters)
            raise
        await self._settle_success(counters)
        await self._sessions.step_up(session_id, "security_key")

    def _require_keys(self) -> SecurityKeys:
        if self._keys is None:
            raise RuntimeError("security keys are not configured on this sign-in service")
        return self._keys

    async def person_for_certificate(self, fingerprint: str) -> Principal | None:
        """The enabled person a certificate is registered to (to offer certificate sign-in)."""
        row = await PersonCertificate.get_or_none(fingerprint=fingerprint.lower())
        if row is None:
            return None
        person = await Principal.get_or_none(id=row.principal_id)
        return person if person is not None and not person.disabled else None

    async def check_password(self, person: Principal, password: str, source: str) -> None:
        """Re-check a signed-in person's password (to change it), throttled like sign-in.

        The same counters as signing in: while the account or the address is
        locked out the password is not checked (LockedOut), and a failure counts.
        """
        source = source[:64]
        now = datetime.now(UTC)
        counters = await self._reserve(person.username, True, source, "password", now)
        try:
            matches = await asyncio.to_thread(
                verify_password, person.password_hash or _dummy_hash(), password[:MAX_PASSWORD]
            )
        except BaseException:
            await self._release(counters)
            raise
        if not matches or not person.password_hash:
            await self._fail(
                person.username, True, source, "password", "bad_password", now, counters
            )
            raise BadRequest("The current password is not correct.", code="bad_password")
        await self._settle_success(counters)

    async def change_password(
        self, account: Account, current: str, new: str, repeated: str, *, source: str, keep: str
    ) -> None:
        """Change a person's own password; ledgered; their other sessions end."""
        check_new_password(account.username, current, new, repeated)
        person = await Principal.get(id=account.id)  # the row, with its password hash
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

    async def _account(self, name: str) -> Principal | None:
        """The account a typed name names; the look-up (it may hold a password) is not logged."""
        if not _ACCOUNT_NAME.fullmatch(name):
            return None  # no account can have this name: nothing to look up
        with unlogged_queries():
            return await Principal.get_or_none(username=name)

    async def _tag(self, name: str) -> str:
        if self._name_key is None:
            self._name_key = await name_key()
        return tag_with(self._name_key, name)

    def _counters(self, subject: str, source: str) -> list[Counter]:
        return [
            Counter("account", subject, self.policy.max_failures),
            Counter("address", source, self.policy.max_address_failures),
        ]

    async def _reserve(
        self, subject: str, known: bool, source: str, method: str, now: datetime
    ) -> list[Counter]:
        """Reserve a slot on the account and address counters, or refuse as locked."""
        taken: list[Counter] = []
        try:
            for counter in self._counters(subject, source):
                refused = await self._throttle.reserve(counter, now)
                if refused is not None:
                    break
                taken.append(counter)
            else:
                return taken
        except BaseException:
            await self._release(taken)
            raise
        await self._release(taken)
        scope = refused.counter.scope
        await self._record_attempt(subject, known, source, method, "locked", f"locked_{scope}", now)
        raise LockedOut(refused.until, now)

    async def _release(self, counters: list[Counter]) -> None:
        for counter in counters:
            await self._throttle.release(counter)

    async def _settle_success(self, counters: list[Counter]) -> None:
        for counter in counters:
            await self._throttle.succeeded(counter, clear=counter.scope == "account")

    async def _succeed(
        self, person: Principal, source: str, method: str, now: datetime, counters: list[Counter]
    ) -> SignedIn:
        try:
            recorded = await self._record_attempt(
                person.username, True, source, method, "granted", "", now
            )
            if method == "security_key":
                await self._trail(person, "key_sign_in", source, recorded)
        except BaseException:
            await self._release(counters)
            raise
        await self._settle_success(counters)
        await self._throttle.purge(now)
        session_id = await self._sessions.create(person, method, source)
        return SignedIn(person, session_id, method)

    async def _fail(
        self,
        name: str,
        known: bool,
        source: str,
        method: str,
        reason: str,
        now: datetime,
        counters: list[Counter],
        entry: str = "auth.sign_in",
    ) -> None:
        """Count the failure first (it counts even if recording fails), then record it."""
        locks: list[tuple[Counter, datetime]] = []
        for counter in counters:
            until = await self._throttle.failed(counter, now)
            if until is not None:
                locks.append((counter, until))
        await self._record_attempt(name, known, source, method, "denied", reason, now, entry)
        for counter, until in locks:
            await self._record_lock(counter, name if known else UNKNOWN, now, until)
        if locks:
            raise LockedOut(max(until for _, until in locks), now)

    async def _record_attempt(
        self,
        name: str,
        known: bool,
        source: str,
        method: str,
        outcome: str,
        reason: str,
        now: datetime,
        entry: str = "auth.sign_in",
    ) -> object:
        """One ``auth.sign_in`` (or ``auth.step_up``) entry before the answer, one attempt row.

        Returns what the ledger returned for the entry (its ticket).
        """
        recorded = await self._ledger.record(
            entry,
            principal=name if known else UNKNOWN,
            method="security_key" if entry == "auth.step_up" else method,
            outcome="granted" if outcome == "granted" else "denied",
            reason=reason or outcome,
            source=source,
        )
        await SignInAttempt.create(
            at=now,
            username=name,
            known=known,
            source=source,
            method=method,
            outcome=outcome,
            reason=reason or outcome,
        )
        return recorded

    async def _trail(self, person: Account, action: str, source: str, recorded: object) -> None:
        await trail_row(
            actor=f"person:{person.username}",
            action=action,
            reason="granted",
            source=source,
            node=self._ledger.node,
            recorded=recorded,
        )

    async def _record_lock(
        self, counter: Counter, principal: str, now: datetime, until: datetime
    ) -> None:
        await self._ledger.record(
            "auth.locked_out",
            principal=principal,
            scope=counter.scope,
            source=counter.subject if counter.scope == "address" else None,
            failures=counter.limit,
            until=utc_timestamp(until),
        )
        await SignInLock.create(
            scope=counter.scope,
            subject=counter.subject,
            at=now,
            until=until,
            failures=counter.limit,
        )


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
