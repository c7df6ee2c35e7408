"""Anchoring the newest checkpoint at each TSA: on demand, and on a schedule while sequencing.

One round asks every TSA due for the newest signed checkpoint note, checks the
reply, stores it (``ledger_anchor``) and ledgers ``checkpoint.anchored``. A TSA
that already anchored that checkpoint is skipped. A TSA that fails is asked
again after an exponential backoff; nothing here ever holds up the log. When
no TSA has anchored the log for ``alert_after_seconds``, one ``alert.raised``
is ledgered for that outage (claimed in ``node_state`` so processes and
restarts do not repeat it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from tortoise.exceptions import IntegrityError

from gateway.anchoring.checks import CheckMemo
from gateway.anchoring.models import AnchorRow
from gateway.anchoring.tsa import TrustedTsa, timestamp_query, verify_reply
from gateway.auth.principals import NodeState
from gateway.config import AnchoringSettings
from gateway.errors import Conflict, SekishoError, Unavailable
from gateway.ledger.queued import EntryRecorder
from gateway.ledger.store import LedgerStore, StoredCheckpoint

log = logging.getLogger("sekisho.anchoring")
ALERT = "ledger.anchoring_overdue"
ACTOR = "ledger-anchoring"
_ALERT_KEY = "anchoring.overdue:"
QUIET_SCAN = 256
"""At most this many entries after a TSA's last anchoring are looked at for anything new."""
TICK_SECONDS = 1.0
"""How often the background task looks whether a TSA is due."""


class TsaTransport(Protocol):
    """Sends a DER TimeStampReq to a TSA and returns its DER reply."""

    async def ask(self, tsa: TrustedTsa, query: bytes) -> bytes:
        """The reply; raises a SekishoError when the TSA cannot be asked."""
        ...


@dataclass(frozen=True)
class AnchorOutcome:
    """What one TSA did with one checkpoint."""

    tsa: str
    state: Literal["anchored", "already", "failed"]
    size: int
    root: bytes
    gen_time: datetime | None = None
    token_sha256: str = ""
    error: str = ""


@dataclass
class TsaState:
    """The schedule of one TSA in this process."""

    failures: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    attempts: int = 0
    delays: list[float] = field(default_factory=list)
    """The backoff delays chosen after failures, in order (cleared on success)."""


def backoff(failures: int, first: float, limit: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: first, 2x, 4x, ... up to limit."""
    return float(min(limit, first * (2 ** max(0, failures - 1))))


class Anchoring:
    """Anchors the log at the configured TSAs."""

    def __init__(
        self,
        store: LedgerStore,
        recorder: EntryRecorder,
        tsas: list[TrustedTsa],
        transport: TsaTransport,
        settings: AnchoringSettings,
        *,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.tsas = tsas
        self._recorder = recorder
        self._transport = transport
        self._settings = settings
        self._is_leader = is_leader
        self._clock = clock
        self.states = {tsa.name: TsaState() for tsa in tsas}
        self.memo = CheckMemo()  # verified tokens and notes of the public list, by content
        self._last_ok: float | None = None
        self._alerted: str | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # ----- one round ----------------------------------------------------------------

    async def anchor_now(self, *, actor: str) -> list[AnchorOutcome]:
        """Anchor the newest checkpoint at every TSA now (whatever their schedule), as
        ``actor`` (the officer, admin or operator who asked; ledgered with each anchoring)."""
        if not self.tsas:
            raise Conflict("no TSA is configured: add [[anchoring.tsas]] (docs/deployment.md)")
        return await self._round(self.tsas, actor)

    async def _round(self, tsas: list[TrustedTsa], actor: str = ACTOR) -> list[AnchorOutcome]:
        async with self._lock:
            checkpoint = await self.store.latest_checkpoint()
            if checkpoint is None:
                raise Unavailable("the ledger has no checkpoint yet")
            outcomes = [await self._anchor_one(checkpoint, tsa, actor) for tsa in tsas]
            if any(o.state != "failed" for o in outcomes):
                self._last_ok = self._clock()
                if self._alerted is not None:  # the outage is over: the next one alerts again
                    await NodeState.filter(key=self._alerted).delete()
                    self._alerted = None
            return outcomes

    async def _anchor_one(
        self, checkpoint: StoredCheckpoint, tsa: TrustedTsa, actor: str
    ) -> AnchorOutcome:
        state = self.states[tsa.name]
        state.attempts += 1
        if await self._nothing_new(checkpoint, tsa):
            self._succeeded(state)
            return AnchorOutcome(tsa.name, "already", checkpoint.size, checkpoint.root)
        try:
            outcome = await self._ask(checkpoint, tsa, actor)
        except SekishoError as exc:
            self._failed(state, tsa, exc.message)
            return AnchorOutcome(
                tsa.name, "failed", checkpoint.size, checkpoint.root, error=exc.message
            )
        self._succeeded(state)
        return outcome

    async def _nothing_new(self, checkpoint: StoredCheckpoint, tsa: TrustedTsa) -> bool:
        """True when ``tsa`` anchored this checkpoint, or one after which the log holds
        only anchoring records (else every anchoring would call for another)."""
        last = await AnchorRow.filter(tsa=tsa.name).order_by("-size").first()
        if last is None or last.size > checkpoint.size:
            return False
        if checkpoint.size - last.size > QUIET_SCAN:
            return False
        leaves = await self.store.leaves(last.size, checkpoint.size)
        return all(_entry_type(leaf) == "checkpoint.anchored" for leaf in leaves)

    async def _ask(
        self, checkpoint: StoredCheckpoint, tsa: TrustedTsa, actor: str
    ) -> AnchorOutcome:
        message = checkpoint.note.encode("utf-8")
        query = timestamp_query(message, tsa)
        reply = await self._transport.ask(tsa, query.der)
        verified = verify_reply(reply, message, tsa, query.nonce)
        try:
            row = await AnchorRow.create(
                size=checkpoint.size,
                root=checkpoint.root,
                note=checkpoint.note,
                tsa=tsa.name,
                gen_time=verified.gen_time,
                reply=reply,
                token_sha256=verified.token_sha256,
            )
        except IntegrityError:  # another process anchored it meanwhile
            return AnchorOutcome(tsa.name, "already", checkpoint.size, checkpoint.root)
        try:
            await self._recorder.record(
                "checkpoint.anchored",
                tsa=tsa.name,
                size=checkpoint.size,
                root_hash=checkpoint.root.hex(),
                token_sha256=verified.token_sha256,
                gen_time=verified.gen_time.isoformat().replace("+00:00", "Z"),
                actor=actor,
            )
        except BaseException:
            await row.delete()  # unledgered anchors are not kept: try again later
            raise
        log.info("ledger anchored at %s: size %d", tsa.name, checkpoint.size)
        return AnchorOutcome(
            tsa.name,
            "anchored",
            checkpoint.size,
            checkpoint.root,
            verified.gen_time,
            verified.token_sha256,
        )

    def _succeeded(self, state: TsaState) -> None:
        state.failures = 0
        state.last_error = ""
        state.delays.clear()
        state.next_attempt = self._clock() + self._settings.interval_seconds

    def _failed(self, state: TsaState, tsa: TrustedTsa, error: str) -> None:
        state.failures += 1
        state.last_error = error
        delay = backoff(
            state.failures, self._settings.retry_seconds, self._settings.retry_max_seconds
        )
        state.delays.append(delay)
        state.next_attempt = self._clock() + delay
        log.warning("anchoring at %s failed (retry in %.0f s): %s", tsa.name, delay, error)

    # ----- background ------------------------------------------------------------------

    async def start(self) -> None:
        """Run the schedule in the background (it acts only while this process sequences)."""
        self._task = asyncio.create_task(self._run(), name="ledger-anchoring")

    async def stop(self) -> None:
        """Stop the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never stop anchoring over one bad round
                log.warning("anchoring round failed: %s", exc)
            await asyncio.sleep(TICK_SECONDS)

    async def run_due(self) -> list[AnchorOutcome]:
        """Anchor at the TSAs that are due, then raise the overdue alert if it is time."""
        if not self._is_leader():
            self._last_ok = None  # another process anchors; start counting afresh if we lead
            return []
        now = self._clock()
        if self._last_ok is None:
            self._last_ok = now
        scheduled = self._settings.interval_seconds > 0
        due = [
            tsa
            for tsa in self.tsas
            if self.states[tsa.name].next_attempt <= now
            and (scheduled or self.states[tsa.name].failures)
        ]
        outcomes = await self._round(due) if due else []
        await self._check_overdue()
        return outcomes

    async def _check_overdue(self) -> None:
        if self._last_ok is None or not self.tsas:
            return
        if self._clock() - self._last_ok < self._settings.alert_after_seconds:
            return
        newest = await AnchorRow.all().order_by("-id").first()
        key = f"{_ALERT_KEY}{newest.id if newest is not None else 0}"
        try:
            await NodeState.create(key=key, value="raised")
        except IntegrityError:
            self._alerted = key
            return  # already raised for this outage, by this process or another
        self._alerted = key
        errors = "; ".join(f"{n}: {s.last_error}" for n, s in self.states.items() if s.last_error)
        log.error(
            "the log has not been anchored for %d s: %s", self._settings.alert_after_seconds, errors
        )
        try:
            await self._recorder.record(
                "alert.raised",
                alert=ALERT,
                detail_code="no_anchor",
                index=newest.size if newest is not None else 0,
                actor=ACTOR,
            )
        except SekishoError as exc:
            log.warning("could not record the anchoring alert (retrying): %s", exc.message)
            await NodeState.filter(key=key).delete()
            self._alerted = None


def _entry_type(leaf: bytes) -> str | None:
    """The clear ``type`` of a leaf (every entry format shows it), None if unreadable."""
    try:
        value = json.loads(leaf)
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None
