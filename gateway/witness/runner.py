"""The mirroring loop of a witness process: every mirrored log, every few seconds or on a nudge.

Each step reads the log's credential afresh: the file given with
``witness add-log --token-file`` or, without one, ``SEKISHO_WITNESS_MIRROR_TOKEN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.errors import SekishoError
from gateway.ledger.audit.sources import Fetcher
from gateway.ledger.reader_token import reader_token
from gateway.tlog.errors import FormatError
from gateway.witness.mirror import MirrorDisagrees, sync_once
from gateway.witness.mirror_store import MirrorStore
from gateway.witness.models import WitnessedLog
from gateway.witness.store import WitnessStore, log_record

log = logging.getLogger("sekisho.witness.mirror")
FetcherFor = Callable[[str, str | None], Fetcher]
"""Makes a fetcher for a log's base URL (tiles at ``<url>/ledger/``) and bearer token."""
TOKEN_ENV = "SEKISHO_WITNESS_MIRROR_TOKEN"  # noqa: S105 - a variable's name, not a secret


class MirrorRunner:
    """Keeps each mirrored log in step; errors go to the log's row, never stop the loop."""

    def __init__(self, store: WitnessStore, fetcher_for: FetcherFor, interval: float) -> None:
        self._store = store
        self._fetcher_for = fetcher_for
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the background loop."""
        self._task = asyncio.create_task(self._run(), name="witness-mirror")

    async def stop(self) -> None:
        """Stop the loop (a step in progress is abandoned; it resumes next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def nudge(self) -> None:
        """Sync soon (the witness just cosigned a larger checkpoint)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                for row in await self._store.logs():
                    if row.mirror and not row.mirror_halted and row.url:
                        await self.sync(row)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep mirroring alive; the next round retries
                log.exception("mirror loop error")

    async def sync(self, row: WitnessedLog) -> None:
        """One step for one log, recording the outcome on its row."""
        store = MirrorStore(row.id)
        updates: dict[str, object]
        try:
            token = reader_token(row.token_file or None, TOKEN_ENV)
            result = await sync_once(store, log_record(row), self._fetcher_for(row.url, token))
        except MirrorDisagrees as exc:
            await self._store.keep(exc.evidence)
            log.error("mirror of %s halted: %s (kept as evidence)", row.origin, exc.message)
            updates = {"mirror_error": exc.message, "mirror_halted": True}
        except (SekishoError, FormatError) as exc:
            log.warning("mirror of %s: %s", row.origin, exc.message)
            updates = {"mirror_error": exc.message}
        else:
            updates = {"mirror_size": result.size, "mirror_error": None}
        updates["mirror_synced_at"] = datetime.now(UTC)
        await WitnessedLog.filter(id=row.id).update(**updates)
