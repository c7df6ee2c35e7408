"""Verify the whole ledger on request, in the background, with progress.

One run at a time per process: starting while a run is in progress returns
that run. The run is the same full audit as ``sekisho ledger verify``
(:func:`gateway.ledger.audit.verify.audit` over the database, with the log key from
the ledger's signer): every leaf rehashed, every stored node recomputed,
every checkpoint signature checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.errors import SekishoError
from gateway.ledger.audit.sources import DatabaseAuditSource
from gateway.ledger.audit.verify import AuditSource, Finding, LogKey, audit
from gateway.ledger.service import LedgerService
from gateway.tlog.errors import FormatError

log = logging.getLogger("sekisho.ledger.verify")


@dataclass
class VerificationRun:
    """One verification: who started it, progress, and the outcome when done."""

    number: int
    started_by: str
    started_at: datetime
    state: str = "running"  # running, intact, tampered, error
    verified: int = 0
    total: int = 0
    tree_size: int = 0
    checkpoints: int = 0
    finding: Finding | None = None
    error: str | None = None
    finished_at: datetime | None = None
    seconds: float = 0.0
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def running(self) -> bool:
        """True until the audit has finished."""
        return self.state == "running"

    @property
    def percent(self) -> int:
        """Progress in whole percent."""
        if not self.running:
            return 100
        return 0 if self.total <= 0 else min(99, self.verified * 100 // self.total)


class LedgerVerifier:
    """Starts and tracks full ledger verifications."""

    def __init__(
        self,
        ledger: LedgerService,
        source_factory: Callable[[], AuditSource] = DatabaseAuditSource,
    ) -> None:
        signer = ledger.signer
        self._key = LogKey(signer.origin, signer.public_key, signer.origin)
        self._source_factory = source_factory
        self._task: asyncio.Task[None] | None = None
        self._count = 0
        self.latest: VerificationRun | None = None

    def start(self, actor: str) -> VerificationRun:
        """Start a run (or return the one in progress)."""
        if self.latest is not None and self.latest.running:
            return self.latest
        self._count += 1
        run = VerificationRun(self._count, actor, datetime.now(UTC))
        self.latest = run
        self._task = asyncio.create_task(self._run(run), name=f"ledger-verify-{run.number}")
        return run

    def run(self, number: int) -> VerificationRun | None:
        """The latest run if it has this number."""
        return self.latest if self.latest is not None and self.latest.number == number else None

    async def wait(self) -> None:
        """Wait for the current run to finish (tests)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Cancel a run in progress."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, run: VerificationRun) -> None:
        def progress(done: int, total: int) -> None:
            run.verified, run.total = done, total

        try:
            result = await audit(self._source_factory(), self._key, progress=progress)
        except (SekishoError, FormatError, OSError) as exc:
            run.state, run.error = "error", getattr(exc, "message", None) or str(exc)
        except Exception as exc:  # report any failure on the page; keep the process alive
            log.exception("ledger verification failed")
            run.state, run.error = "error", type(exc).__name__
        else:
            run.state = "intact" if result.ok else "tampered"
            run.finding = result.finding
            run.tree_size = result.tree_size
            run.checkpoints = result.state.checkpoints
            run.verified = result.state.size if result.ok else run.verified
            run.total = max(run.total, result.tree_size)
            if result.finding is not None:
                log.error("ledger verification found tampering: %s", result.finding.message)
        run.finished_at = datetime.now(UTC)
        run.seconds = time.monotonic() - run._started
