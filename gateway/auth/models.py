"""Portal sign-in tables: sessions (stored hashed), sign-in attempts, throttle counters,
lock-outs, certificates."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from gateway.auth.principals import Principal


class PortalSession(Model):
    """A signed-in browser. Only the SHA-256 of the session id is stored."""

    id_hash = fields.CharField(max_length=64, primary_key=True)
    principal: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "sekisho.Principal", related_name="portal_sessions", on_delete=fields.CASCADE
    )
    principal_id: int
    method = fields.CharField(max_length=16)  # "password" or "certificate"
    source = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)  # the absolute time-out

    class Meta:
        table = "portal_session"


class SignInAttempt(Model):
    """One sign-in attempt, kept for officers' alerts.

    ``username`` is the account's name when ``known``; a name that is no
    account's is stored only as its tag (:mod:`gateway.auth.name_tags`), since
    people type passwords into the username field.
    """

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    username = fields.CharField(max_length=64, db_index=True)
    known = fields.BooleanField(default=False)  # the username names an account
    source = fields.CharField(max_length=64, db_index=True)
    method = fields.CharField(max_length=16, default="password")
    outcome = fields.CharField(max_length=16)  # granted, denied, locked
    reason = fields.CharField(max_length=32, default="")

    class Meta:
        table = "sign_in_attempt"


class SignInThrottle(Model):
    """The failure counter of one account name or address (:mod:`gateway.auth.throttle`).

    Times are milliseconds since the epoch (``0`` for none) so that the
    conditional updates compare plain integers on SQLite and PostgreSQL alike.
    """

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=16)  # "account" or "address"
    subject = fields.CharField(max_length=64)
    failures = fields.IntField(default=0)  # confirmed failures in the current window
    pending = fields.IntField(default=0)  # attempts reserved and not yet decided
    window_start = fields.BigIntField(default=0)
    locked_until = fields.BigIntField(default=0)

    class Meta:
        table = "sign_in_throttle"
        unique_together = (("scope", "subject"),)


class SignInLock(Model):
    """A lock-out of one account name or one client address until ``until``."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=16)  # "account" or "address"
    subject = fields.CharField(max_length=64)
    at = fields.DatetimeField()
    until = fields.DatetimeField(db_index=True)
    failures = fields.IntField()

    class Meta:
        table = "sign_in_lock"


class PersonCertificate(Model):
    """A TLS client certificate (SHA-256 of its DER) with which a person may sign in."""

    id = fields.IntField(primary_key=True)
    fingerprint = fields.CharField(max_length=64, unique=True)
    principal: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "sekisho.Principal", related_name="certificates", on_delete=fields.CASCADE
    )
    principal_id: int
    label = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "person_certificate"
