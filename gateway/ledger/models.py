"""Ledger tables. Hot paths write them with batched SQL in :mod:`gateway.ledger.store`."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class PendingEntry(Model):
    """An entry durably queued and not yet integrated into the tree."""

    id = fields.BigIntField(primary_key=True)
    data = fields.BinaryField()
    opening = fields.BinaryField(null=True)  # never served: see OpeningRow

    class Meta:
        table = "ledger_pending"


class LeafRow(Model):
    """An integrated entry: its index, bytes and leaf hash (hex, indexed for look-ups)."""

    idx = fields.BigIntField(primary_key=True, generated=False)
    data = fields.BinaryField()
    leaf_hash = fields.CharField(max_length=64, db_index=True)
    queue_id = fields.BigIntField(unique=True)
    # The entry's opening, kept in the row that holds the entry (one sequential write
    # instead of a second, randomly keyed table). Never served to the public, never
    # sent to witnesses or mirrors: every read of public leaves names its columns.
    opening = fields.BinaryField(null=True)

    class Meta:
        table = "ledger_leaf"


class OpeningRow(Model):
    """Where the previous release kept openings (values and salts), by leaf hash (hex).

    Read only: this release keeps an opening in the entry's own row
    (``ledger_pending.opening``, then ``ledger_leaf.opening``); the upgrade copies
    these rows there, and the store still reads this table for an entry it does not
    find there. Never part of the tree, never served to the public, never sent to
    witnesses or mirrors: see gateway/ledger/commitments.py and docs/security.md.
    """

    leaf_hash = fields.CharField(max_length=64, primary_key=True)
    opening = fields.BinaryField()

    class Meta:
        table = "ledger_opening"


class NodeRow(Model):
    """The hash of one complete aligned subtree; ``key`` packs (level << 56) | index."""

    key = fields.BigIntField(primary_key=True, generated=False)
    hash = fields.BinaryField()

    class Meta:
        table = "ledger_node"


class CheckpointRow(Model):
    """A signed checkpoint note; at most one per tree size."""

    size = fields.BigIntField(primary_key=True, generated=False)
    root = fields.BinaryField()
    note = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_checkpoint"


class CosignatureRow(Model):
    """A witness's cosignature line on the checkpoint of one size (tlog-cosignature/v1).

    Rows below the previous final checkpoint are pruned: receipts use the newest
    final checkpoint, and a receipt already issued carries its own cosignatures.
    """

    id = fields.BigIntField(primary_key=True)
    size = fields.BigIntField(db_index=True)
    witness = fields.CharField(max_length=255)
    signer = fields.CharField(max_length=300)
    line = fields.TextField()
    timestamp = fields.BigIntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_cosignature"
        unique_together = (("size", "signer"),)


class WitnessStateRow(Model):
    """What the sequencing process last learnt about one witness (shared by every process)."""

    name = fields.CharField(max_length=255, primary_key=True)
    url = fields.TextField(default="")
    signer = fields.CharField(max_length=300, default="")
    size = fields.BigIntField(default=0)
    last_error = fields.TextField(null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    last_success_at = fields.DatetimeField(null=True)

    class Meta:
        table = "ledger_witness"
