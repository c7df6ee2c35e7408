"""The oversight log's table: one row per ``oversight.viewed`` entry, for filtering and paging."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class OversightEvent(Model):
    """One officer, auditor or administrator view, mirrored from its ledger entry."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    actor = fields.CharField(max_length=128, db_index=True)
    view = fields.CharField(max_length=64, db_index=True)
    filters: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    node = fields.CharField(max_length=64)
    ledger_queue_id = fields.BigIntField()
    ledger_index = fields.BigIntField(null=True)

    class Meta:
        table = "oversight_event"
