"""Database models shared across the gateway (accounts and node state)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Principal(Model):
    """A person or service account with a clearance and roles."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=128, default="")
    password_hash = fields.CharField(max_length=256, default="")
    must_change_password = fields.BooleanField(default=False)
    level = fields.CharField(max_length=64)
    compartments: fields.Field[list[str]] = fields.JSONField(default=list)
    nationality = fields.CharField(max_length=3, default="")
    roles: fields.Field[list[str]] = fields.JSONField(default=list)
    disabled = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "principal"


class NodeState(Model):
    """Small key/value facts about this node (schema version, init time)."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()

    class Meta:
        table = "node_state"


class ApiClient(Model):
    """Another system that calls the signing API, with scopes and an allow-list of keys."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    keys: fields.Field[list[str]] = fields.JSONField(default=list)
    cert_fingerprint = fields.CharField(max_length=64, null=True, unique=True)
    rate_per_minute = fields.IntField(default=600)
    # other clients that may read and extend this client's custody chains (anchors)
    chain_writers: fields.Field[list[str]] = fields.JSONField(default=list)
    revoked = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_client"


class ApiToken(Model):
    """A bearer token, stored as its SHA-256; belongs to a person or to an API client."""

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    principal: fields.ForeignKeyNullableRelation[Principal] = fields.ForeignKeyField(
        "sekisho.Principal", related_name="tokens", null=True, on_delete=fields.CASCADE
    )
    client: fields.ForeignKeyNullableRelation[ApiClient] = fields.ForeignKeyField(
        "sekisho.ApiClient", related_name="tokens", null=True, on_delete=fields.CASCADE
    )
    label = fields.CharField(max_length=64, default="")
    revoked = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_token"
