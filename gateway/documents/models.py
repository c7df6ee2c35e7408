"""Document tables: documents, their encrypted versions, and the local access trail."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Document(Model):
    """A document; its content lives in versions. ``id`` is a random UUID."""

    id = fields.CharField(max_length=36, primary_key=True)
    title = fields.CharField(max_length=256)
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    level_rank = fields.IntField()
    label = fields.CharField(max_length=1024)
    current_version = fields.IntField(default=1)
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    destroyed = fields.BooleanField(default=False)

    class Meta:
        table = "document"


class DocumentVersion(Model):
    """One encrypted version: wrapped data key, hashes, blob location, ledger anchor."""

    id = fields.IntField(primary_key=True)
    document: fields.ForeignKeyRelation[Document] = fields.ForeignKeyField(
        "sekisho.Document", related_name="versions", on_delete=fields.CASCADE
    )
    document_id: str  # set by Tortoise from the foreign key
    version = fields.IntField()
    label = fields.CharField(max_length=1024)
    filename = fields.CharField(max_length=255, default="")
    media_type = fields.CharField(max_length=127, default="application/octet-stream")
    size = fields.BigIntField()
    ciphertext_size = fields.BigIntField()
    segment_size = fields.IntField()
    plaintext_sha256 = fields.CharField(max_length=64)
    ciphertext_sha256 = fields.CharField(max_length=64)
    wrapped_key = fields.BinaryField(null=True)
    kek_label = fields.CharField(max_length=64)
    kek_version = fields.IntField(default=1)
    blob_key = fields.CharField(max_length=128)
    ledger_queue_id = fields.BigIntField()
    ledger_index = fields.BigIntField(null=True)
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    destroyed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "document_version"
        unique_together = (("document", "version"),)


class SegmentAnchor(Model):
    """A version's ciphertext anchor: the leaf hashes of its header and sealed segments.

    ``root`` (their RFC 6962 root) is what ``document.registered`` anchors; see
    gateway/documents/segment_anchor.py. Versions stored before segment anchors
    have no row and are checked against ``ciphertext_sha256`` as before.
    """

    version_row = fields.BigIntField(primary_key=True, generated=False)  # DocumentVersion.id
    root = fields.CharField(max_length=64)
    leaves = fields.BinaryField()

    class Meta:
        table = "document_segments"


class AccessEvent(Model):
    """One access decision, mirrored from its ledger entry for fast filtering."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor = fields.CharField(max_length=128, db_index=True)
    document_id = fields.CharField(max_length=36, null=True, db_index=True)
    version = fields.IntField(null=True)
    action = fields.CharField(max_length=32)
    outcome = fields.CharField(max_length=16, db_index=True)
    reason = fields.CharField(max_length=64, default="")
    source = fields.CharField(max_length=64, default="")
    node = fields.CharField(max_length=64)
    ledger_queue_id = fields.BigIntField()
    ledger_index = fields.BigIntField(null=True)

    class Meta:
        table = "access_event"


class KekVersion(Model):
    """Key-encryption keys on the token, by version; rotation adds one."""

    version = fields.IntField(primary_key=True, generated=False)
    label = fields.CharField(max_length=64, unique=True)
    status = fields.CharField(max_length=16, default="active")  # active, retiring, removed
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "kek_version"


class ApprovalRequest(Model):
    """A downgrade or destruction waiting for a second officer (the two-person rule).

    ``status`` is pending, approved, refused, expired or stale (the document changed
    before approval); every change of status is ledgered (``approval.*`` entries).
    """

    id = fields.CharField(max_length=36, primary_key=True)
    document_id = fields.CharField(max_length=36, db_index=True)
    version = fields.IntField()
    action = fields.CharField(max_length=16)  # downgrade or destroy
    new_label = fields.CharField(max_length=1024, default="")
    reason = fields.TextField(default="")
    requested_by = fields.CharField(max_length=128)
    requested_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    status = fields.CharField(max_length=16, default="pending", db_index=True)
    decided_by = fields.CharField(max_length=128, default="")
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "approval_request"
