"""Recording access decisions: ledger first (durably queued), then the local trail row.

If the ledger cannot queue the entry the caller gets Unavailable and nothing is
served: access recording fails closed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from gateway.auth.identity import Identity
from gateway.documents.models import AccessEvent
from gateway.errors import Unavailable
from gateway.ledger.service import LedgerService

log = logging.getLogger("sekisho.access")


class AccessRecorder:
    """Writes one ``document.accessed`` entry and one trail row per decision.

    Trail rows from concurrent requests are group-committed: one transaction
    (one fsync) per batch instead of one per request.
    """

    def __init__(self, ledger: LedgerService) -> None:
        self._ledger = ledger
        self._rows: list[tuple[AccessEvent, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def _write_row(self, row: AccessEvent) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.append((row, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._rows:
                batch, self._rows = self._rows, []
                try:
                    await AccessEvent.bulk_create([row for row, _ in batch])
                except Exception as exc:  # every waiter fails closed
                    log.error("access trail rows not written: %s", exc)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(
                                Unavailable("the access trail cannot be written right now")
                            )
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._flusher = None

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
        ticket = await self._ledger.record(
            "document.accessed",
            document=document_id,
            version=version,
            actor=identity.actor,
            action=action,
            outcome=outcome,
            reason=reason,
            source=source,
        )
        await self._write_row(
            AccessEvent(
                actor=identity.actor,
                document_id=document_id,
                version=version,
                action=action,
                outcome=outcome,
                reason=reason,
                source=source,
                node=self._ledger.node,
                ledger_queue_id=ticket.queue_id,
                at=datetime.now(UTC),
            )
        )

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
