"""The ledger as the rest of the gateway sees it: append, await integration, read proofs.

``append`` returns once the entry is durably queued (group-committed with any
concurrent appends). The sequencer task, running only in the process that
holds leadership, integrates queued entries in batches with one signed
checkpoint per batch. Processes that do not lead still queue entries and serve
reads; their waiters learn where entries landed by polling the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.models import Model

from gateway.db.group_commit import GroupCommit
from gateway.errors import LedgerRolledBack, NotFound, Unavailable
from gateway.ledger import doorbell
from gateway.ledger.checkpoint_signer import CheckpointSigner
from gateway.ledger.entries import (
    CommittedEntry,
    EntryError,
    check_entry,
    make_entry,
    open_entry,
)
from gateway.ledger.leadership import Leadership
from gateway.ledger.rollback import TokenCheckpoint, history_finding
from gateway.ledger.sequencer import (
    Integrated,
    direct_index,
    direct_queue_id,
    load_frontier,
    sequence_once,
)
from gateway.ledger.store import IntegrationBatch, LedgerStore, StoredCheckpoint
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    assemble_proof,
    consistency_proof_coords,
    inclusion_proof_coords,
    leaf_hash,
)
from gateway.tlog.receipt import Receipt, format_receipt

log = logging.getLogger("sekisho.ledger")
KEEP_INTERVAL = 1.0
"""Least seconds between two writes of the kept checkpoint to the token under a burst."""
KEEP_SHARE = 0.05
"""Most of the token's time the kept-checkpoint writes may take under a burst."""
KEPT_FIRST_SECONDS = 5.0
"""How long a new ledger's first term waits for its first checkpoint to be kept on the token."""
CheckpointListener = Callable[[StoredCheckpoint], Coroutine[Any, Any, None]]
ReceiptCheckpoint = Callable[[int, StoredCheckpoint], Coroutine[Any, Any, StoredCheckpoint]]
"""(entry index, latest checkpoint) -> the checkpoint a receipt uses, with cosignatures."""


@dataclass(frozen=True)
class Ticket:
    """A durably recorded entry; await :meth:`LedgerService.integrated` for its index.

    ``index`` is already known when the entry was integrated before ``append``
    returned (the sequencing process's own appends).
    """

    queue_id: int
    index: int | None = None
    beside_written: bool = False
    """The row given to :meth:`LedgerService.append` as ``beside`` is written (with the
    entry, in the transaction that wrote it); when False the caller writes it."""


@dataclass
class _Direct:
    """An entry of this process waiting for the next batch, with its row to write beside."""

    entry: bytes
    answer: asyncio.Future[Ticket]
    beside: Model | None = None


class LedgerService:
    """Append, sequence (when leading) and read the log."""

    def __init__(
        self,
        store: LedgerStore,
        signer: CheckpointSigner,
        leadership: Leadership,
        *,
        node: str,
        batch_size: int = 1000,
        batch_ms: int = 5,
        kept: TokenCheckpoint | None = None,
        bell: doorbell.Doorbell | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.node = node
        self._leadership = leadership
        self._batch_size = batch_size
        self._batch_delay = batch_ms / 1000
        self._frontier: Frontier | None = None
        self._queue: GroupCommit[tuple[bytes, Model | None], int] = GroupCommit(
            "ledger queue", self._enqueue, _ledger_unavailable
        )
        self._direct: list[_Direct] = []
        self._waiters: dict[int, list[asyncio.Future[int]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._listeners: list[CheckpointListener] = []
        self.receipt_checkpoint: ReceiptCheckpoint | None = None
        self.last_error: str | None = None
        self._kept = kept
        self._bell = bell
        self._kept_size = 0
        self._kept_next: StoredCheckpoint | None = None
        self._kept_writer: asyncio.Task[None] | None = None
        self._kept_due = 0.0  # monotonic time before which the next token write waits
        self.rollback: str | None = None
        """Why the database ledger cannot be trusted (rolled back or forked); None while sound."""

    # ----- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start the background sequencer / follower loop."""
        self._task = asyncio.create_task(self._run(), name="ledger-sequencer")

    async def stop(self) -> None:
        """Stop the loop and give up leadership."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            # Let the loop finish the batch it is writing, then end; cancel only if stuck.
            done, _ = await asyncio.wait({self._task}, timeout=10)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._frontier = None
        await self._flush_kept()
        await self._spill_direct()
        if self._queue.flusher is not None:
            with contextlib.suppress(Exception):
                await self._queue.flusher
        await self._leadership.release()
        if self._bell is not None:
            self._bell.close()

    @property
    def is_leader(self) -> bool:
        """True while this process sequences."""
        return self._frontier is not None

    def on_checkpoint(self, listener: CheckpointListener) -> None:
        """Call ``listener`` after each new checkpoint this process writes."""
        self._listeners.append(listener)

    # ----- writing ----------------------------------------------------------------

    async def append(self, entry: bytes, *, beside: Model | None = None) -> Ticket:
        """Durably record one entry; raises Unavailable if it cannot be written.

        While this process sequences, the entry goes straight into the next batch
        and this returns once it is integrated under a signed checkpoint; otherwise
        it returns once the entry is durably queued for the sequencer.

        ``beside`` is a row with a ``ledger_queue_id`` field (an access-trail row)
        written in the transaction that writes the entry (the batch's, or the queue's
        when another process sequences), given the entry's queue id, so the request
        costs no write of its own; ``Ticket.beside_written`` says whether that
        happened (not where the store's rows do not ride: ``LedgerStore.rows_ride``).
        """
        if not isinstance(entry, CommittedEntry):  # make_entry checked its own
            check_entry(entry)  # a bad entry fails its own caller, never a batch
        self.ensure_open()
        if self._frontier is not None:
            direct: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
            self._direct.append(_Direct(entry, direct, beside if self.store.rows_ride else None))
            self._wake.set()
            return await direct
        riding = beside if self.store.rows_ride else None
        queue_id = await self._queue.submit((entry, riding))
        if self._bell is not None:
            self._bell.ring()  # the sequencer is another process: look now, not at the next poll
        self._wake.set()
        return Ticket(queue_id, beside_written=riding is not None)

    async def _enqueue(self, queued: Sequence[tuple[bytes, Model | None]]) -> list[int]:
        return await self.store.enqueue([entry for entry, _ in queued], [row for _, row in queued])

    def ensure_open(self) -> None:
        """Raise unless entries may be written now (not shutting down, not rolled back).

        Writers that queue entries in their own transaction (not through
        :meth:`append`) call this first, so they fail closed as appends do.
        """
        if self._stopping:
            raise Unavailable("the ledger is shutting down")
        if self.rollback is not None:
            raise _rolled_back(self.rollback)

    def nudge(self) -> None:
        """Entries were queued in a caller's own transaction: have the sequencer (this
        process's, or another's by its doorbell) take them now, not at its next poll."""
        if self._bell is not None:
            self._bell.ring()
        self._wake.set()

    async def integrate_now(self, queue_id: int, wait_seconds: float) -> int | None:
        """An entry was queued in a caller's own transaction: have it integrated now.

        While this process sequences, waits up to ``wait_seconds`` for the entry's
        index; otherwise (or if it is not integrated in time) returns None: the index
        is resolved later.
        """
        self.nudge()
        if self._frontier is None:
            return None
        with contextlib.suppress(Unavailable):
            return await self.integrated(Ticket(queue_id), wait_seconds)
        return None

    async def record(
        self, entry_type: str, /, *, beside: Model | None = None, **fields: Any
    ) -> Ticket:
        """Build an entry of ``entry_type`` for this node and append it (``beside``: see
        :meth:`append`)."""
        return await self.append(make_entry(entry_type, self.node, **fields), beside=beside)

    async def integrated(self, ticket: Ticket, wait_seconds: float = 30) -> int:
        """Wait until the entry is in the tree; returns its index."""
        if ticket.index is not None:
            return ticket.index
        if ticket.queue_id < 0:  # integrated straight from memory: the id encodes the index
            return direct_index(ticket.queue_id)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(ticket.queue_id, []).append(future)
        self._wake.set()
        try:
            async with asyncio.timeout(wait_seconds):
                return await future
        except TimeoutError:
            raise Unavailable("the ledger did not integrate the entry in time") from None
        finally:
            waiting = self._waiters.get(ticket.queue_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiters[ticket.queue_id]

    # ----- background loop -----------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self.rollback is not None:  # fail closed until an operator recovers
                    await asyncio.sleep(0.2)
                    continue
                if self._frontier is None:
                    await self._try_lead()
                if self._frontier is None:
                    await self._follow()
                else:
                    await self._sequence()
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop alive; readiness shows the error
                self.last_error = str(exc) or type(exc).__name__
                log.warning("ledger loop error: %s", self.last_error)
                self._frontier = None
                await self._spill_direct()
                await self._leadership.release()
                await asyncio.sleep(0.5)

    async def _try_lead(self) -> None:
        if await self._leadership.try_acquire():
            if not await self._history_intact():
                await self._leadership.release()
                return
            self._frontier = await load_frontier(self.store)
            if await self.store.latest_checkpoint() is None:
                await self._write_empty_checkpoint()
            latest = await self.store.latest_checkpoint()
            if latest is not None and latest.size > self._kept_size:
                fresh = self._kept_size == 0
                self._keep(latest)  # first start, or a history the token lacks
                if fresh:
                    await self._kept_first()
            log.info("ledger: this node sequences (tree size %d)", self._frontier.size)

    async def _history_intact(self) -> bool:
        """Compare the database with the checkpoint kept on the token; raise the alarm if not."""
        if self._kept is None:
            return True
        await self._flush_kept()  # a write still running from an earlier term
        finding, kept = await history_finding(self.store, self._kept)
        if finding is not None:
            self.raise_rollback(finding)
            return False
        self._kept_size = kept.size if kept is not None else 0
        return True

    def raise_rollback(self, reason: str) -> None:
        """The ledger was rolled back or forked: stop writing, fail readiness, alert officers.

        The ``alert.raised`` entry cannot go into a ledger that is itself the
        problem; the operator's recovery step records it (docs/decisions.md).
        """
        if self.rollback is None:
            self.rollback = reason
            log.error("LEDGER ROLLBACK OR FORK: %s; writes stop until an operator recovers", reason)
        self._frontier = None
        direct, self._direct = self._direct, []
        for waiting in direct:
            if not waiting.answer.done():
                waiting.answer.set_exception(_rolled_back(reason))

    async def _write_empty_checkpoint(self) -> None:
        note = await self.signer.sign(Checkpoint(self.signer.origin, 0, EMPTY_ROOT))
        await self.store.integrate(
            IntegrationBatch(0, [], [], StoredCheckpoint(0, EMPTY_ROOT, note))
        )

    async def _follow(self) -> None:
        if self._bell is not None:
            self._bell.stop_listening()  # free the name for the process that sequences now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), 0.01 if self._waiters else 0.2)
        self._wake.clear()
        if self._waiters:
            found = await self.store.indexes_for_queue_ids(list(self._waiters))
            self._resolve(found)

    async def _sequence(self) -> None:
        if self._bell is not None:
            self._bell.listen(self._wake.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), doorbell.IDLE_WAIT)
        self._wake.clear()
        if not await self._leadership.still_held():
            self._frontier = None
            await self._spill_direct()
            return
        await self._fill_batch(time.monotonic())
        while self._frontier is not None:
            if self._frontier.size < self._kept_size:
                self.raise_rollback(
                    f"the sequencer's tree has {self._frontier.size} entries but the token's "
                    f"checkpoint says {self._kept_size} (rolled back)"
                )
                return
            direct, self._direct = (
                self._direct[: self._batch_size],
                self._direct[self._batch_size :],
            )
            closed = time.monotonic()
            try:
                frontier, result = await sequence_once(
                    self.store,
                    self._frontier,
                    self.signer.sign,
                    self.signer.origin,
                    self._batch_size,
                    [waiting.entry for waiting in direct],
                    [waiting.beside for waiting in direct],
                )
            except BaseException:
                self._direct = direct + self._direct  # spilled to the queue by the caller
                raise
            self._frontier = frontier
            if result is None:
                break
            self._answer_direct(direct, result)
            self._after_integration(result)
            self._keep(result.checkpoint)
            if self.rollback is not None:  # raised (by a witness answer) during this batch
                self._frontier = None
            if self._waiters:  # a steady stream must not keep waiters from their answer
                self._resolve(await self.store.indexes_for_queue_ids(list(self._waiters)))
            await self._fill_batch(closed)
        if self._waiters:  # entries integrated by a previous leader
            self._resolve(await self.store.indexes_for_queue_ids(list(self._waiters)))

    async def _fill_batch(self, opened: float) -> None:
        """Let the next batch gather entries until ``batch_ms`` after it opened.

        A batch closes at ``batch_size`` entries or ``batch_ms`` after the previous
        one closed, so under a steady stream checkpoints are signed at most once
        per ``batch_ms`` (each costs a token signature, a row and an audit check)
        instead of once per sequencing step, and no entry waits longer than that.
        """
        if not self._batch_delay or self._stopping:
            return
        if self._queue.pending() + len(self._direct) >= self._batch_size:
            return
        wait = opened + self._batch_delay - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _keep(self, checkpoint: StoredCheckpoint) -> None:
        """Have ``checkpoint`` written to the token, off the sequencing path.

        A token write costs a few milliseconds (the token stores it durably) and
        shares the token with checkpoint signing, so one writer runs beside the
        sequencer, writes the newest checkpoint waiting and, under a burst,
        at most one every ``KEEP_INTERVAL`` seconds.
        """
        if self._kept is None:
            return
        self._kept_next = checkpoint
        if self._kept_writer is None or self._kept_writer.done():
            self._kept_writer = asyncio.create_task(self._write_kept(), name="ledger-kept")

    async def _write_kept(self) -> None:
        assert self._kept is not None
        while self._kept_next is not None:
            wait = self._kept_due - time.monotonic()
            if wait > 0 and not self._stopping:
                # Leave the token to checkpoint signing: a slow token (or a loaded
                # machine) spaces the writes out further. The spacing holds across
                # writers too: one that ends and a new one started by the next
                # checkpoint wait the same.
                await asyncio.sleep(wait)
            if self._kept_next is None:
                return
            checkpoint, self._kept_next = self._kept_next, None
            started = time.monotonic()
            try:
                await self._kept.write(checkpoint)
            except Exception as exc:  # keep trying; readiness shows the token's state
                log.warning("ledger: cannot keep the checkpoint on the token: %s", exc)
                if self._stopping:
                    return
                if self._kept_next is None:
                    self._kept_next = checkpoint
                self._kept_due = time.monotonic() + 0.5
                continue
            took = time.monotonic() - started
            self._kept_due = started + max(KEEP_INTERVAL, took / KEEP_SHARE)
            self._kept_size = max(self._kept_size, checkpoint.size)

    async def _kept_first(self) -> None:
        """Wait (a few seconds at most) until the token keeps a checkpoint of this ledger
        before the first term integrates anything: a kill -9 while that first write was
        still running left entries in the database and none of this ledger on the
        token, which the next start took for a replaced token (a false rollback alarm)."""
        if self._kept_writer is not None:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._kept_writer), KEPT_FIRST_SECONDS)

    async def _flush_kept(self) -> None:
        if self._kept_writer is not None:
            with contextlib.suppress(Exception):
                await self._kept_writer

    def _answer_direct(self, direct: list[_Direct], result: Integrated) -> None:
        first = result.checkpoint.size - len(direct)
        for offset, waiting in enumerate(direct):
            index = first + offset
            if not waiting.answer.done():
                ticket = Ticket(direct_queue_id(index), index, waiting.beside is not None)
                waiting.answer.set_result(ticket)

    async def _spill_direct(self) -> None:
        """Leadership was lost or the loop failed: queue in-memory entries durably instead
        (their rows beside are the callers' to write: the tickets say so)."""
        if not self._direct:
            return
        batch, self._direct = self._direct, []
        try:
            ids = await self.store.enqueue([waiting.entry for waiting in batch])
        except Exception as exc:  # fail closed: the callers get 503
            log.error("ledger queue write failed: %s", exc)
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(
                        Unavailable("the ledger cannot record entries right now")
                    )
            return
        for waiting, queue_id in zip(batch, ids, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(Ticket(queue_id))
        self._wake.set()

    def _after_integration(self, result: Integrated) -> None:
        self._resolve(result.indexes)
        for listener in self._listeners:
            task: asyncio.Task[None] = asyncio.create_task(listener(result.checkpoint))
            task.add_done_callback(_log_listener_error)

    def _resolve(self, indexes: dict[int, int]) -> None:
        for queue_id, index in indexes.items():
            for future in self._waiters.pop(queue_id, []):
                if not future.done():
                    future.set_result(index)

    # ----- reading ------------------------------------------------------------------

    async def pending_count(self) -> int:
        """Entries queued and not yet integrated (every node reads the shared queue)."""
        return await self.store.pending_count()

    async def latest(self) -> StoredCheckpoint:
        """The newest signed checkpoint."""
        latest = await self.store.latest_checkpoint()
        if latest is None:
            raise Unavailable("the ledger has no checkpoint yet")
        return latest

    async def entry(self, index: int) -> bytes:
        """Entry bytes at an index."""
        leaves = await self.store.leaves(index, index + 1)
        if not leaves:
            raise NotFound(f"no ledger entry at index {index}")
        return leaves[0]

    async def opened_entries(self, start: int, end: int) -> list[dict[str, Any]]:
        """Entries [start, end) with their fields opened (for officers and the node itself).

        An entry whose opening is missing or does not match is reported as its clear
        part plus ``"opening": "missing"`` / ``"mismatch"``, never guessed.
        """
        leaves = await self.store.leaves(start, end)
        openings = await self.store.openings([leaf_hash(d) for d in leaves])
        opened = []
        for data in leaves:
            opening = openings.get(leaf_hash(data))
            try:
                opened.append(open_entry(data, opening))
            except EntryError:
                clear = json.loads(data)
                problem = "missing" if opening is None else "mismatch"
                opened.append(
                    {k: clear.get(k) for k in ("type", "ts", "node")} | {"opening": problem}
                )
        return opened

    async def opening(self, index: int) -> tuple[bytes, bytes | None]:
        """An entry's bytes and its stored opening (None for entries written in clear)."""
        data = await self.entry(index)
        found = await self.store.openings([leaf_hash(data)])
        return data, found.get(leaf_hash(data))

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of ``index`` in the tree of ``size``."""
        groups = inclusion_proof_coords(index, size)
        return assemble_proof(groups, await self.store.hashes(c for g in groups for c in g))

    async def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes."""
        groups = consistency_proof_coords(old_size, new_size)
        return assemble_proof(groups, await self.store.hashes(c for g in groups for c in g))

    async def receipt(self, index: int) -> str:
        """A C2SP tlog-proof for an entry, against the latest checkpoint.

        With witnesses, ``receipt_checkpoint`` picks the checkpoint instead: the
        newest final one containing the entry, its note carrying the cosignatures.
        """
        latest = await self.latest()
        if index >= latest.size:
            raise NotFound(f"entry {index} is not integrated yet")
        if self.receipt_checkpoint is not None:
            latest = await self.receipt_checkpoint(index, latest)
        proof = await self.inclusion_proof(index, latest.size)
        return format_receipt(Receipt(index=index, proof=proof, checkpoint_note=latest.note))


def _rolled_back(reason: str) -> LedgerRolledBack:
    return LedgerRolledBack(
        f"the ledger is halted: {reason}; an operator must recover it (docs/deployment.md)"
    )


def _log_listener_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("checkpoint listener failed: %s", task.exception())


def _ledger_unavailable() -> Exception:
    return Unavailable("the ledger cannot record entries right now")
