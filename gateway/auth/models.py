"""Portal sign-in tables: sessions (stored hashed), sign-in attempts, throttle counters,
lock-outs, certificates, security keys and WebAuthn challenges."""

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
    method = fields.CharField(max_length=16)  # "password", "certificate" or "security_key"
    step_up = fields.CharField(max_length=16, default="")  # "security_key" once stepped up
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


class SecurityKey(Model):
    """A FIDO2/WebAuthn credential (a security key) with which a person may sign in."""

    id = fields.IntField(primary_key=True)
    credential_id = fields.CharField(max_length=1400, unique=True)  # base64url
    principal: fields.ForeignKeyRelation[Principal] = fields.ForeignKeyField(
        "sekisho.Principal", related_name="security_keys", on_delete=fields.CASCADE
    )
    principal_id: int
    public_key = fields.BinaryField()  # COSE_Key
    sign_count = fields.BigIntField(default=0)
    transports: fields.Field[list[str]] = fields.JSONField(default=list)
    name = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "security_key"


class WebAuthnChallenge(Model):
    """A challenge handed to one browser for one ceremony; used at most once, then deleted.

    ``holder`` is the SHA-256 of the browser's secret cookie and the purpose, so a
    challenge is answered only by the browser it was given to.
    """

    id = fields.BigIntField(primary_key=True)
    holder = fields.CharField(max_length=64, db_index=True)
    challenge = fields.CharField(max_length=128)  # base64url
    principal_id = fields.IntField(null=True)  # whose key is registered or asked for
    name = fields.CharField(max_length=64, default="")  # a new key's name
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "webauthn_challenge"
