"""A witness node's own tables (its own database, never the gateway's)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WitnessedLog(Model):
    """A log this witness cosigns: its key, and the latest checkpoint it cosigned.

    ``size``, ``root`` and ``note`` change only through one conditional UPDATE
    on the previous size and root, so two concurrent requests cannot both win.
    """

    id = fields.IntField(primary_key=True)
    origin = fields.CharField(max_length=1024, unique=True)
    vkey = fields.TextField()
    url = fields.TextField(default="")
    mirror = fields.BooleanField(default=False)
    token_file = fields.TextField(default="")
    """Path of the file holding the mirror's bearer token for the log (never the token)."""
    size = fields.BigIntField(default=0)
    root = fields.BinaryField()
    note = fields.TextField(null=True)
    cosigned_at = fields.DatetimeField(null=True)
    added_at = fields.DatetimeField(auto_now_add=True)
    mirror_size = fields.BigIntField(default=0)
    mirror_error = fields.TextField(null=True)
    mirror_synced_at = fields.DatetimeField(null=True)
    mirror_halted = fields.BooleanField(default=False)

    class Meta:
        table = "witness_log"


class Evidence(Model):
    """What a log showed that contradicts what this witness holds; kept for investigation."""

    id = fields.IntField(primary_key=True)
    origin = fields.CharField(max_length=1024)
    kind = fields.CharField(max_length=32)
    alarm = fields.BooleanField(default=True)
    held_size = fields.BigIntField()
    held_note = fields.TextField(null=True)
    presented_old_size = fields.BigIntField(null=True)
    presented_note = fields.TextField()
    presented_proof = fields.TextField(default="")
    detail = fields.TextField(default="")
    fingerprint = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "witness_evidence"


class MirrorLeaf(Model):
    """One entry of a mirrored log, as fetched from its entry bundles."""

    id = fields.BigIntField(primary_key=True)
    log_id = fields.IntField()
    idx = fields.BigIntField()
    data = fields.BinaryField()

    class Meta:
        table = "mirror_leaf"
        unique_together = (("log_id", "idx"),)


class MirrorNode(Model):
    """A recomputed subtree hash of a mirrored log (``key`` packs level and index)."""

    id = fields.BigIntField(primary_key=True)
    log_id = fields.IntField()
    key = fields.BigIntField()
    hash = fields.BinaryField()

    class Meta:
        table = "mirror_node"
        unique_together = (("log_id", "key"),)


class MirrorCheckpoint(Model):
    """A log checkpoint whose root the mirror recomputed from the entries it holds."""

    id = fields.BigIntField(primary_key=True)
    log_id = fields.IntField()
    size = fields.BigIntField()
    root = fields.BinaryField()
    note = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "mirror_checkpoint"
        unique_together = (("log_id", "size"),)
