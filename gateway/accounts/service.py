"""People: create, change, disable and enable accounts, and manage personal API tokens.

Every change is ledgered as one ``principal.changed`` entry queued in the same
database transaction as the change itself (no entry without the change, no
change without the entry). Entries carry the username, the actor, the kind of
change, the names of the changed fields and the resulting level and roles;
never display names, compartments, nationalities, passwords or tokens. A
request that changes nothing writes nothing.

Each change runs :func:`~gateway.db.serialised.serialised` on ``accounts``:
the checks it depends on (the last enabled administrator, a free username, a
live token, an enabled account) are made inside the transaction that writes,
so two administrators acting at once, in one process or in several, cannot
both pass a check that only one of them may pass.

Unlocking an account ends a sign-in lock-out of its name (too many failed
passwords) before it runs out; lock-outs of client addresses stay.

Disabling an account, removing roles or lowering a clearance (a lower level,
fewer compartments, another nationality) ends the person's portal sessions in
the same transaction; disabling also revokes their personal API tokens, so
enabling the account again brings back neither. Changes clear this process's
cache of token identities; other processes see them once their cache entries
expire (seconds).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from gateway.accounts import rules
from gateway.auth import throttle
from gateway.auth.account import Account
from gateway.auth.models import PortalSession, SignInLock
from gateway.auth.passwords import hash_password, one_time_password
from gateway.auth.principals import ApiToken, Principal
from gateway.auth.tokens import identity_cache, issue_token, token_digest
from gateway.db.serialised import serialised
from gateway.errors import Conflict, NotFound
from gateway.ledger.entries import utc_timestamp
from gateway.ledger.queued import EntryRecorder, QueuedLedger
from gateway.policy.labels import LabelError, LevelScheme

ADMIN_ROLE = "admin"
PREFIX_LENGTH = 12  # what gateway.auth.tokens stores as ApiToken.prefix
_EDITABLE = ("display_name", "level", "compartments", "nationality", "roles")


@dataclass(frozen=True)
class NewAccount:
    """What ``create`` needs; values are validated by the service."""

    username: str
    level: str
    compartments: tuple[str, ...] = ()
    nationality: str = ""
    roles: tuple[str, ...] = rules.DEFAULT_ROLES
    display_name: str = ""


@dataclass(frozen=True)
class AccountChanges:
    """Fields to change; ``None`` leaves a field as it is."""

    display_name: str | None = None
    level: str | None = None
    compartments: tuple[str, ...] | None = None
    nationality: str | None = None
    roles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Actor:
    """Who makes a change (``person:admin``, ``operator:root``) and from where."""

    name: str
    source: str


class AccountService:
    """Account changes, each one ledgered with the change, each one serialised."""

    def __init__(self, ledger: EntryRecorder, scheme: LevelScheme) -> None:
        # Entries are queued inside each change's transaction, straight into the
        # durable queue (the server's group-committing ledger runs in other tasks,
        # which would wait for this transaction on SQLite).
        self._ledger = QueuedLedger(ledger.node)
        self._scheme = scheme

    async def list_accounts(self) -> list[Principal]:
        """Every account, by username."""
        return await Principal.all().order_by("username")

    async def get(self, username: str) -> Principal:
        """One account, or NotFound (also for names no account can have)."""
        valid = isinstance(username, str) and rules.USERNAME_RE.fullmatch(username) is not None
        person = await Principal.get_or_none(username=username) if valid else None
        if person is None:
            raise NotFound(f"no user {username!r}")
        return person

    async def create(self, new: NewAccount, actor: Actor) -> tuple[Principal, str]:
        """Create an account; returns it and its one-time password (show it once)."""
        values: dict[str, Any] = {
            "username": rules.check_username(new.username),
            "display_name": rules.check_display_name(new.display_name),
            "level": rules.check_level(self._scheme, new.level),
            "compartments": rules.check_compartments(self._scheme, new.compartments),
            "nationality": rules.check_nationality(self._scheme, new.nationality),
            "roles": rules.check_roles(new.roles),
        }
        taken = Conflict(f"user {values['username']!r} already exists")
        if await Principal.exists(username=values["username"]):
            raise taken
        password = one_time_password()
        password_hash = await asyncio.to_thread(hash_password, password)
        changed = sorted([*(f for f in _EDITABLE if values[f]), "password"])
        try:
            async with serialised("accounts"):
                if await Principal.exists(username=values["username"]):
                    raise taken
                await self._ledger_change(values["username"], "created", changed, values, actor)
                person = await Principal.create(
                    **values, password_hash=password_hash, must_change_password=True
                )
        except IntegrityError:
            raise taken from None
        return person, password

    async def update(
        self, username: str, changes: AccountChanges, actor: Actor
    ) -> tuple[Principal, list[str]]:
        """Apply changes; returns the account and the names of the fields that changed."""
        wanted = self._validated(changes)
        await self.get(username)
        async with serialised("accounts"):
            person = await self.get(username)
            changed = sorted(f for f, v in wanted.items() if getattr(person, f) != v)
            if not changed:
                return person, []
            after = {f: wanted.get(f, getattr(person, f)) for f in ("level", "roles")}
            if ADMIN_ROLE in person.roles and ADMIN_ROLE not in after["roles"]:
                await self._keep_an_admin(person)
            lowered = self._lowers_clearance(person, wanted)
            await self._ledger_change(username, "updated", changed, after, actor)
            for name in changed:
                setattr(person, name, wanted[name])
            await person.save(update_fields=[*changed, "updated_at"])
            if lowered:
                await PortalSession.filter(principal_id=person.id).delete()
        identity_cache.clear()  # cached identities carry level and roles
        return person, changed

    async def set_disabled(
        self, username: str, disabled: bool, actor: Actor
    ) -> tuple[Principal, bool]:
        """Disable or enable an account; returns it and whether anything changed.

        Disabling ends the person's portal sessions and revokes their personal
        tokens (the entry lists ``tokens`` among its fields when any were live).
        """
        await self.get(username)
        async with serialised("accounts"):
            person = await self.get(username)
            if person.disabled == disabled:
                return person, False
            if disabled and ADMIN_ROLE in person.roles:
                await self._keep_an_admin(person)
            fields = ["disabled"]
            live = ApiToken.filter(principal_id=person.id, revoked=False)
            if disabled and await live.exists():
                fields.append("tokens")
            change = "disabled" if disabled else "enabled"
            values = {"level": person.level, "roles": person.roles}
            await self._ledger_change(username, change, fields, values, actor)
            person.disabled = disabled
            await person.save(update_fields=["disabled", "updated_at"])
            if disabled:
                await live.update(revoked=True)
                await PortalSession.filter(principal_id=person.id).delete()
        identity_cache.clear()
        return person, True

    async def locked_until(self, username: str) -> datetime | None:
        """When the sign-in lock-out of this account ends, or None when it is not locked."""
        person = await self.get(username)
        return await throttle.locked_until("account", person.username, datetime.now(UTC))

    async def unlock(self, username: str, actor: Actor) -> tuple[Principal, bool]:
        """End the account's sign-in lock-out now; False (nothing written) if not locked."""
        await self.get(username)
        async with serialised("accounts"):
            person = await self.get(username)
            now = datetime.now(UTC)
            if await throttle.locked_until("account", person.username, now) is None:
                return person, False
            values = {"level": person.level, "roles": person.roles}
            await self._ledger_change(person.username, "unlocked", ["lockout"], values, actor)
            await throttle.unlock("account", person.username, now)
            await SignInLock.filter(scope="account", subject=person.username, until__gt=now).update(
                until=now
            )
        return person, True

    async def issue_token(self, username: str, label: str, actor: Actor) -> tuple[str, str]:
        """A personal API token for an enabled account: (token, prefix); show it once."""
        label = rules.check_token_label(label)
        await self.get(username)
        async with serialised("accounts"):
            person = await self.get(username)
            if person.disabled:
                raise Conflict(f"user {username!r} is disabled; enable the account first")
            token = await issue_token(principal=person, label=label)
            prefix = token[:PREFIX_LENGTH]
            values = {"level": person.level, "roles": person.roles, "token": prefix}
            await self._ledger_change(username, "token_issued", ["tokens"], values, actor)
        return token, prefix

    async def revoke_token(self, prefix: str, actor: Actor) -> tuple[ApiToken, bool]:
        """Revoke a personal token by prefix (or whole token); True if it was live."""
        await self._personal_token(prefix.strip())
        async with serialised("accounts"):
            row = await self._personal_token(prefix.strip())
            if row.revoked:
                return row, False
            person = row.principal
            assert person is not None
            values = {"level": person.level, "roles": person.roles, "token": row.prefix}
            await self._ledger_change(person.username, "token_revoked", ["tokens"], values, actor)
            await ApiToken.filter(id=row.id).update(revoked=True)
        identity_cache.clear()
        row.revoked = True
        return row, True

    async def tokens(self, username: str) -> list[ApiToken]:
        """A person's tokens, newest first."""
        person = await self.get(username)
        return await ApiToken.filter(principal_id=person.id).order_by("-id")

    def _validated(self, changes: AccountChanges) -> dict[str, Any]:
        wanted: dict[str, Any] = {}
        if changes.display_name is not None:
            wanted["display_name"] = rules.check_display_name(changes.display_name)
        if changes.level is not None:
            wanted["level"] = rules.check_level(self._scheme, changes.level)
        if changes.compartments is not None:
            wanted["compartments"] = rules.check_compartments(self._scheme, changes.compartments)
        if changes.nationality is not None:
            wanted["nationality"] = rules.check_nationality(self._scheme, changes.nationality)
        if changes.roles is not None:
            wanted["roles"] = rules.check_roles(changes.roles)
        return wanted

    def _lowers_clearance(self, person: Principal, wanted: dict[str, Any]) -> bool:
        """True when the change takes a role, a level, a compartment or the nationality away."""
        if set(person.roles) - set(wanted.get("roles", person.roles)):
            return True
        if set(person.compartments) - set(wanted.get("compartments", person.compartments)):
            return True
        if wanted.get("nationality", person.nationality) != person.nationality:
            return True
        level = wanted.get("level", person.level)
        try:
            return bool(self._scheme.rank(level) < self._scheme.rank(person.level))
        except LabelError:
            return True  # a stored level this scheme no longer knows: treat as lowered

    async def _personal_token(self, given: str) -> ApiToken:
        query = ApiToken.filter(principal_id__isnull=False)
        if len(given) > PREFIX_LENGTH:
            query = query.filter(token_hash=token_digest(given))
        else:
            query = query.filter(prefix=given)
        rows = await query.prefetch_related("principal")
        if not rows:
            raise NotFound(f"no personal token with prefix {given[:PREFIX_LENGTH]!r}")
        if len(rows) > 1:
            raise Conflict(f"several tokens share the prefix {given!r}; give the whole token")
        return rows[0]

    async def _keep_an_admin(self, person: Principal) -> None:
        """Conflict unless another enabled administrator remains (call while serialised)."""
        others = await Principal.filter(disabled=False).exclude(id=person.id)
        if not any(ADMIN_ROLE in other.roles for other in others):
            raise Conflict("this is the last enabled administrator; appoint another one first")

    async def _ledger_change(
        self,
        username: str,
        change: str,
        changed: list[str],
        values: dict[str, Any],
        actor: Actor,
    ) -> None:
        await self._ledger.record(
            "principal.changed",
            principal=username,
            actor=actor.name,
            change=change,
            fields=changed,
            level=values["level"],
            roles=sorted(values["roles"]),
            outcome="applied",
            source=actor.source,
            token=values.get("token"),
        )


def account_view(person: Account) -> dict[str, object]:
    """The JSON form of an account (never the password hash)."""
    return {
        "username": person.username,
        "display_name": person.display_name,
        "level": person.level,
        "compartments": sorted(person.compartments),
        "nationality": person.nationality,
        "roles": sorted(person.roles),
        "disabled": person.disabled,
        "must_change_password": person.must_change_password,
        "created_at": utc_timestamp(person.created_at),
        "updated_at": utc_timestamp(person.updated_at),
    }


def token_view(row: ApiToken) -> dict[str, object]:
    """The JSON form of a token (its prefix, never the token or its hash)."""
    return {
        "prefix": row.prefix,
        "label": row.label,
        "revoked": row.revoked,
        "created_at": utc_timestamp(row.created_at),
        "last_used_at": utc_timestamp(row.last_used_at) if row.last_used_at else None,
    }
