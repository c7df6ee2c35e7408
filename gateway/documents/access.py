"""Recording access decisions: ledger first (durably queued), then the local trail row.

If the ledger cannot queue the entry the caller gets Unavailable and nothing is
served: access recording fails closed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from tortoise import connections

from gateway.auth.identity import Identity
from gateway.db.group_commit import GroupCommit
from gateway.db.one_hop import insert_of, run_all
from gateway.db.sqlite_engine import one_hop_writer
from gateway.documents.models import AccessEvent
from gateway.errors import BadRequest, Unavailable
from gateway.ledger.service import LedgerService

log = logging.getLogger("sekisho.access")


class UnrecordableValue(BadRequest):
    """A value is too long for its trail column: refused before it joins a batch."""

    code = "unrecordable"


def check_fits(row: AccessEvent) -> None:
    """Refuse a row whose value would not fit its column (it would fail a whole batch)."""
    for name, field in row._meta.fields_map.items():
        value = getattr(row, name, None)
        limits = field.constraints
        if isinstance(value, str) and len(value) > limits.get("max_length", len(value)):
            raise UnrecordableValue(f"{name} is longer than {limits['max_length']} characters")
        if isinstance(value, int) and not limits.get("ge", value) <= value <= limits.get(
            "le", value
        ):
            raise UnrecordableValue(f"{name} is out of range")


async def _write_rows(rows: Sequence[AccessEvent]) -> list[None]:
    writer = one_hop_writer(connections.get("default"))
    if writer is not None:  # SQLite: one hop, not one per statement, holding the writer
        await writer.write_at_once(partial(run_all, [insert_of(row) for row in rows]))
    else:
        await AccessEvent.bulk_create(list(rows))
    return [None] * len(rows)


def _trail_unavailable() -> Exception:
    return Unavailable("the access trail cannot be written right now")


class AccessRecorder:
    """Writes one ``document.accessed`` entry and one trail row per decision.

    Trail rows from concurrent requests are group-committed: one transaction
    (one fsync) per batch instead of one per request. A row is checked before it
    joins a batch, and a batch that fails anyway is written again row by row, so
    one person's bad row fails only their own request.
    """

    def __init__(self, ledger: LedgerService) -> None:
        self._ledger = ledger
        self._rows: GroupCommit[AccessEvent, None] = GroupCommit(
            "access trail", _write_rows, _trail_unavailable
        )

    async def _write_row(self, row: AccessEvent) -> None:
        await self._rows.submit(row)

    async def record(
        self,
        identity: Identity,
        *,
        action: str,
        outcome: str,
        reason: str,
        source: str,
        document_id: str | None = None,
        version: int | None = None,
    ) -> None:
        """Durably record one decision; raises Unavailable when it cannot."""
        await self.record_actor(
            identity.actor,
            action=action,
            outcome=outcome,
            reason=reason,
            source=source,
            document_id=document_id,
            version=version,
        )

    async def record_actor(
        self,
        actor: str,
        *,
        action: str,
        outcome: str,
        reason: str,
        source: str,
        document_id: str | None = None,
        version: int | None = None,
    ) -> None:
        """:meth:`record` for an actor named by its ledger name (the node's own sweeps)."""
        row = AccessEvent(
            actor=actor,
            document_id=document_id,
            version=version,
            action=action,
            outcome=outcome,
            reason=reason,
            source=source,
            node=self._ledger.node,
            ledger_queue_id=0,
            at=datetime.now(UTC),
        )
        check_fits(row)  # before the ledger entry and before the batch
        ticket = await self._ledger.record(
            "document.accessed",
            beside=row,
            document=document_id,
            version=version,
            actor=actor,
            action=action,
            outcome=outcome,
            reason=reason,
            source=source,
        )
        if ticket.beside_written:  # with the entry, in the transaction that wrote it
            return
        row.ledger_queue_id = ticket.queue_id
        await self._write_row(row)

    async def alert(
        self, identity: Identity, *, alert: str, detail: str, document_id: str, version: int
    ) -> None:
        """Ledger an integrity alert (best effort: the request fails either way)."""
        try:
            await self._ledger.record(
                "alert.raised",
                alert=alert,
                detail_code=detail,
                document=document_id,
                version=version,
                actor=identity.actor,
            )
        except Exception as exc:  # already failing the request; keep the original error
            log.error("could not ledger alert %s for %s: %s", alert, document_id, exc)
        log.warning(
            "integrity alert %s (%s) on document %s v%d", alert, detail, document_id, version
        )
