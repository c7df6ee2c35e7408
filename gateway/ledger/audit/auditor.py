"""The periodic ledger auditor that runs inside the service.

Scheme: every ``interval`` seconds an *incremental* audit verifies what was
integrated since the last clean checkpoint it reached: new leaves, the
subtrees they complete and new checkpoints, all against the frontier it
remembered (so a rewritten or forked history is caught as soon as it is
signed). An incremental run cannot see an old leaf changed in place, so every
``full_interval`` seconds, and on the first run after start-up, the run is a
*full* pass from entry 0 instead.

A finding leaves the remembered state at the last clean checkpoint before
it, so every later run sees it again until it is repaired. Each finding is
recorded once as an ``alert.raised`` ledger entry: the claim is a row in
``node_state``, so restarts and several processes sharing one database do not
repeat it. Nothing is appended while the ledger is intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from gateway.auth.principals import NodeState
from gateway.errors import SekishoError
from gateway.ledger.audit.sources import DatabaseAuditSource
from gateway.ledger.audit.verify import AuditResult, AuditSource, AuditState, Finding, LogKey, audit
from gateway.ledger.service import LedgerService

log = logging.getLogger("sekisho.ledger.audit")

__all__ = ["AuditStatus", "LedgerAuditor"]

_ALERT_KEY = "ledger-alert:"


@dataclass(frozen=True)
class AuditStatus:
    """What the last audit found, for /readyz, /metrics and officers."""

    state: str = "pending"
    """``pending`` (not run yet), ``intact``, ``tampered``, ``error`` or ``off``."""
    verified_size: int = 0
    tree_size: int = 0
    checkpoints: int = 0
    finding: Finding | None = None
    error: str | None = None
    last_audit: datetime | None = None
    last_full_audit: datetime | None = None

    @property
    def ok(self) -> bool:
        """False only while a finding is held."""
        return self.finding is None

    def as_check(self) -> dict[str, object]:
        """The ``ledger`` entry of /readyz; tampering is reported, never a readiness blocker."""
        check: dict[str, object] = {
            "ok": True,
            "audit": self.state,
            "verified_size": self.verified_size,
            "tree_size": self.tree_size,
            "finding": self.finding.message if self.finding else None,
        }
        if self.finding is not None:
            check["finding_index"] = self.finding.index
        if self.error is not None:
            check["error"] = self.error
        if self.last_audit is not None:
            check["last_audit"] = self.last_audit.isoformat()
        if self.last_full_audit is not None:
            check["last_full_audit"] = self.last_full_audit.isoformat()
        return check


class LedgerAuditor:
    """Incremental audits every ``interval`` seconds, a full pass every ``full_interval``."""

    def __init__(
        self,
        ledger: LedgerService,
        *,
        interval: float,
        full_interval: float,
        source: AuditSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._source: AuditSource = source or DatabaseAuditSource()
        self._key = LogKey(ledger.signer.origin, ledger.signer.public_key, ledger.signer.origin)
        self._interval = interval
        self._full_interval = full_interval
        self._clock = clock
        self._state: AuditState | None = None
        self._last_full: float | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.status = AuditStatus(state="pending" if interval > 0 else "off")

    async def start(self) -> None:
        """Start the background loop (nothing when the interval is 0)."""
        if self._interval > 0:
            self._task = asyncio.create_task(self._loop(), name="ledger-auditor")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep auditing; the status shows the error
                message = str(exc) or type(exc).__name__
                log.warning("ledger audit failed: %s", message)
                self.status = replace(self.status, state="error", error=message)
            await asyncio.sleep(self._interval)

    def _full_due(self) -> bool:
        if self._state is None or self._last_full is None or self._full_interval <= 0:
            return True
        return self._clock() - self._last_full >= self._full_interval

    async def run_once(self, *, full: bool | None = None) -> AuditResult:
        """Audit now: a full pass when due (or asked for), otherwise incrementally."""
        async with self._lock:
            full = self._full_due() if full is None else full
            started = self._clock()
            result = await audit(self._source, self._key, None if full else self._state)
            self._state = result.state
            now = datetime.now(UTC)
            if full:
                self._last_full = started
            self.status = AuditStatus(
                state="intact" if result.ok else "tampered",
                verified_size=result.state.size,
                tree_size=result.tree_size,
                checkpoints=result.state.checkpoints,
                finding=result.finding,
                last_audit=now,
                last_full_audit=now if full else self.status.last_full_audit,
            )
            if result.finding is not None:
                await self._alert(result.finding)
            return result

    async def _alert(self, finding: Finding) -> None:
        """Record ``alert.raised`` once per finding (claimed in node_state first)."""
        key = (_ALERT_KEY + finding.fingerprint)[:64]
        try:
            await NodeState.create(key=key, value=finding.message)
        except IntegrityError:
            return  # already raised, by this process or another
        log.error("ledger TAMPERED: %s", finding.message)
        try:
            await self._ledger.record(
                "alert.raised",
                alert="ledger.tampered",
                detail_code=finding.code,
                index=finding.index,
                actor="ledger-auditor",
            )
        except SekishoError as exc:
            log.warning("could not record the ledger alert (retrying next run): %s", exc.message)
            await NodeState.filter(key=key).delete()
