"""Signing API tables: named keys with versions, and anchored records (custody chains)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SigningKey(Model):
    """A named key clients sign with; its token keys are its versions."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=32, unique=True)
    algorithm = fields.CharField(max_length=16)
    purpose = fields.CharField(max_length=16)  # "sign" or "timestamp"
    created_at = fields.DatetimeField(auto_now_add=True)

    versions: fields.ReverseRelation[SigningKeyVersion]

    class Meta:
        table = "signing_key"


class SigningKeyVersion(Model):
    """One token key of a named key: ``pending`` while being made, then active, then retired."""

    id = fields.IntField(primary_key=True)
    key: fields.ForeignKeyRelation[SigningKey] = fields.ForeignKeyField(
        "sekisho.SigningKey", related_name="versions", on_delete=fields.RESTRICT
    )
    key_id: int
    version = fields.IntField()
    label = fields.CharField(max_length=128, unique=True)
    status = fields.CharField(max_length=16)
    certificate = fields.BinaryField(null=True)
    spki_sha256 = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    activated_at = fields.DatetimeField(null=True)
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "signing_key_version"
        unique_together = (("key", "version"),)


class AnchorRecord(Model):
    """One anchored record: a link in its owner's custody chain of a subject, with its entry.

    Chains are per owner: two clients anchoring the same subject keep two chains.
    """

    id = fields.UUIDField(primary_key=True)
    owner = fields.CharField(max_length=64, default="")  # the client whose chain this is
    subject = fields.CharField(max_length=256)
    subject_sha256 = fields.CharField(max_length=64, db_index=True)
    sequence = fields.IntField()
    kind = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=8)
    digest = fields.CharField(max_length=128)  # hex
    metadata: fields.Field[dict[str, object]] = fields.JSONField(default=dict)
    metadata_sha256 = fields.CharField(max_length=64)
    client = fields.CharField(max_length=64)
    entry = fields.BinaryField()
    leaf_hash = fields.CharField(max_length=64)
    previous = fields.CharField(max_length=64, null=True)
    queue_id = fields.BigIntField()
    ledger_index = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    rule = fields.CharField(max_length=64, null=True)  # the custody rule it was checked by
    rule_version = fields.IntField(null=True)
    handover = fields.UUIDField(null=True)  # the two-party hand-over it anchors

    class Meta:
        table = "anchor_record"
        unique_together = (("owner", "subject_sha256", "sequence"),)
