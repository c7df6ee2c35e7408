"""Custody tables: rule versions, two-party hand-overs and raised custody alerts."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class CustodyRule(Model):
    """One version of a custody rule, with the ledger entry that recorded it."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    version = fields.IntField()
    document: fields.Field[dict[str, object]] = fields.JSONField()
    sha256 = fields.CharField(max_length=64)  # of the document in canonical JSON
    actor = fields.CharField(max_length=128)
    entry = fields.BinaryField()  # the custody.rule_changed entry
    leaf_hash = fields.CharField(max_length=64)
    queue_id = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "custody_rule"
        unique_together = (("name", "version"),)


class CustodyHandover(Model):
    """A hand-over record both parties sign; anchored as a link once both signatures verify."""

    id = fields.UUIDField(primary_key=True)
    owner = fields.CharField(max_length=64)
    subject = fields.CharField(max_length=256)
    subject_sha256 = fields.CharField(max_length=64, db_index=True)
    document: fields.Field[dict[str, object]] = fields.JSONField()  # what both sign
    sha256 = fields.CharField(max_length=64)  # of the document in canonical JSON
    giver = fields.CharField(max_length=80)  # "client:NAME" or "person:NAME"
    receiver = fields.CharField(max_length=80)
    # each {party, key, version, signature, certificate}: separate columns, so two
    # parties signing at once never overwrite each other
    giver_signature: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    receiver_signature: fields.Field[dict[str, object] | None] = fields.JSONField(null=True)
    status = fields.CharField(
        max_length=16, default="pending"
    )  # pending, anchoring, anchored, refused
    record = fields.UUIDField(null=True)  # the link, once anchored
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "custody_handover"


class CustodyAlert(Model):
    """An alert raised for a link (out of rule, overdue): at most one per link and code."""

    id = fields.IntField(primary_key=True)
    record = fields.UUIDField()
    owner = fields.CharField(max_length=64)
    subject_sha256 = fields.CharField(max_length=64, db_index=True)
    rule = fields.CharField(max_length=64)
    code = fields.CharField(max_length=32)
    message = fields.CharField(max_length=512)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "custody_alert"
        unique_together = (("record", "code"),)
