"""The anchoring table: one row per checkpoint a TSA timestamped."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AnchorRow(Model):
    """A TSA's RFC 3161 reply over the signed note of the checkpoint of ``size``.

    ``reply`` is the whole DER TimeStampResp (status and token), so it can be
    checked as it is with ``openssl ts -verify -in``; ``token_sha256`` is its
    SHA-256 as ledgered in the ``checkpoint.anchored`` entry.
    """

    id = fields.BigIntField(primary_key=True)
    size = fields.BigIntField(db_index=True)
    root = fields.BinaryField()
    note = fields.TextField()
    tsa = fields.CharField(max_length=64)
    gen_time = fields.DatetimeField()
    reply = fields.BinaryField()
    token_sha256 = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "ledger_anchor"
        unique_together = (("size", "tsa"),)
