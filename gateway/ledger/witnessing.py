"""Collecting witness cosignatures for new checkpoints (only the sequencing process sends).

Checkpoints arrive once per sequencer batch, far faster than witnesses answer,
so they are witnessed in *rounds*: every witness is sent the same target
checkpoint, each with a consistency proof from the size that witness last
cosigned; when a quorum has cosigned it (or every witness has answered or is
backing off) the next round takes the newest checkpoint. Witnesses therefore
cosign the same sizes and a quorum forms; entries in skipped checkpoints are
final as soon as a later final checkpoint contains them.

A witness that is down is retried with back-off; when it returns it receives
the current round's checkpoint with one consistency proof from its last size.
A 409 naming another size is retried once with a proof from that size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from gateway.config import Settings
from gateway.errors import SekishoError
from gateway.ledger.cosignatures import CosignatureStore, WitnessKey, cosigned_note
from gateway.ledger.service import LedgerService
from gateway.ledger.store import StoredCheckpoint
from gateway.tlog.checkpoint import cosignature_timestamp, verify_cosignature
from gateway.tlog.note import NoteError, matching_signatures, parse_note
from gateway.tlog.witness_protocol import (
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    format_add_checkpoint,
    parse_add_checkpoint_response,
    parse_size_conflict,
)

__all__ = ["RETRY_MAX_SECONDS", "Transport", "WitnessRejected", "WitnessReply", "Witnessing"]

log = logging.getLogger("sekisho.ledger.witnessing")
RETRY_MAX_SECONDS = 5.0
_CLOCK_SKEW = 600
_STATUS_MEANINGS = {
    400: "the witness calls the request malformed",
    403: "the witness does not accept the log's signature (is it configured with this log key?)",
    404: "the witness does not know this log (run 'sekisho witness add-log' there)",
    422: (
        "the witness rejects the consistency proof from the size it holds: it was shown another "
        "history of this log (split view), or the proof is wrong"
    ),
}


@dataclass(frozen=True)
class WitnessReply:
    """A witness's HTTP answer."""

    status: int
    content_type: str
    body: bytes


class Transport(Protocol):
    """Posts an add-checkpoint body to a witness's submission URL."""

    async def start(self) -> None:
        """Open connections (called inside the event loop)."""
        ...

    async def close(self) -> None:
        """Close them."""
        ...

    async def add_checkpoint(self, url: str, body: str) -> WitnessReply:
        """The witness's answer; raises Unavailable when it cannot be reached."""
        ...


class WitnessRejected(SekishoError):
    """A witness answered, but not with a cosignature."""

    status = 502
    code = "witness_rejected"


@dataclass
class _Peer:
    key: WitnessKey
    known: int = 0
    cosigned: int = -1
    done: int = -1
    ok: bool = True
    failures: int = 0
    retry_at: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def backing_off(self) -> bool:
        return not self.ok and time.monotonic() < self.retry_at

    def settled(self, size: int) -> bool:
        """Has nothing more to contribute to the round at ``size`` now."""
        return self.done >= size or self.known > size or self.backing_off()

    def wants(self, size: int) -> bool:
        if self.cosigned >= size or self.known > size or self.backing_off():
            return False
        return self.done < size or not self.ok


@dataclass
class LatencyStats:
    """Milliseconds from sequencing a checkpoint until a final checkpoint contained it."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    last: float | None = None

    def add(self, ms: float) -> None:
        """One checkpoint became final after ``ms``."""
        self.samples.append(ms)
        self.last = ms

    def summary(self) -> dict[str, Any]:
        """count, last, mean, p50, p95 and max over the kept samples."""
        values = sorted(self.samples)
        if not values:
            return {"count": 0}
        return {
            "count": len(values),
            "last_ms": round(self.last or 0.0, 1),
            "mean_ms": round(statistics.fmean(values), 1),
            "p50_ms": round(values[len(values) // 2], 1),
            "p95_ms": round(values[min(len(values) - 1, int(len(values) * 0.95))], 1),
            "max_ms": round(values[-1], 1),
        }


def configured_witnesses(settings: Settings) -> list[WitnessKey]:
    """The witnesses of ``ledger.witnesses``: the one place their keys are parsed."""
    return [WitnessKey.from_endpoint(e) for e in settings.ledger.witnesses]


def witness_keys(witnessing: Witnessing | None, settings: Settings) -> tuple[list[WitnessKey], int]:
    """The witnesses and quorum this node counts: the running coordinator's, else the
    configured ones (a node that does not run the coordinator)."""
    if witnessing is not None:
        return list(witnessing.witnesses), witnessing.quorum
    return configured_witnesses(settings), settings.witness_quorum


class Witnessing:
    """Sends checkpoints to witnesses, stores their cosignatures, knows what is final."""

    def __init__(
        self,
        ledger: LedgerService,
        witnesses: Sequence[WitnessKey],
        quorum: int,
        transport: Transport,
        store: CosignatureStore | None = None,
    ) -> None:
        self.ledger = ledger
        self.witnesses = tuple(witnesses)
        self.quorum = quorum
        self.store = store or CosignatureStore()
        self.latency = LatencyStats()
        self._transport = transport
        self._peers = [_Peer(key) for key in self.witnesses]
        self._signers = [key.signer for key in self.witnesses]
        self._leading = False
        self._newest: StoredCheckpoint | None = None
        self._target: StoredCheckpoint | None = None
        self._cosigners: dict[int, set[str]] = {}
        self._offered: deque[tuple[int, float]] = deque(maxlen=100_000)
        self._final = -1
        self._tasks: list[asyncio.Task[None]] = []
        self._note_lock = asyncio.Lock()
        self._proofs: dict[tuple[int, int], asyncio.Future[list[bytes]]] = {}

    # ----- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Listen for checkpoints, pick receipts' checkpoints, start the workers."""
        await self._transport.start()
        self.ledger.on_checkpoint(self.offer)
        self.ledger.receipt_checkpoint = self.receipt_checkpoint
        self._tasks.append(asyncio.create_task(self._supervise(), name="witnessing"))
        for peer in self._peers:
            task = asyncio.create_task(self._work(peer), name=f"witness-{peer.key.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop sending (an answer in flight is dropped; the next leader repeats the round)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._transport.close()

    # ----- receipts (any process) ----------------------------------------------------

    async def receipt_checkpoint(self, index: int, latest: StoredCheckpoint) -> StoredCheckpoint:
        """The newest final checkpoint containing ``index``, else the latest; with cosignatures."""
        final = await self.store.final_size(self._signers, self.quorum)
        if final is not None and final > index:
            chosen = latest if latest.size == final else await self.ledger.store.checkpoint(final)
            if chosen is not None:
                lines = await self.store.lines(final, self._signers)
                return replace(chosen, note=cosigned_note(chosen.note, lines))
        lines = await self.store.lines(latest.size, self._signers)
        return replace(latest, note=cosigned_note(latest.note, lines))

    # ----- rounds ----------------------------------------------------------------------

    async def offer(self, checkpoint: StoredCheckpoint) -> None:
        """A new checkpoint was written (ledger listener): witness it in the next round."""
        if self._newest is None or checkpoint.size > self._newest.size:
            self._newest = checkpoint
            self._offered.append((checkpoint.size, time.monotonic()))
        if self._leading:
            self._advance()

    def _advance(self) -> None:
        target, newest = self._target, self._newest
        if newest is None or (target is not None and newest.size <= target.size):
            return
        if target is not None:
            cosigned = len(self._cosigners.get(target.size, ()))
            if cosigned < self.quorum and not all(p.settled(target.size) for p in self._peers):
                return
            for size in [size for size in self._cosigners if size <= target.size]:
                del self._cosigners[size]
        self._target = newest
        for peer in self._peers:
            peer.wake.set()

    async def _reached(self, target: StoredCheckpoint) -> None:
        if len(self._cosigners.get(target.size, ())) < self.quorum:
            return
        now = time.monotonic()
        while self._offered and self._offered[0][0] <= target.size:
            _, offered_at = self._offered.popleft()
            self.latency.add((now - offered_at) * 1000)
        previous, self._final = self._final, target.size
        if previous > 0:
            try:
                await self.store.prune(previous)
            except Exception as exc:  # pruning is housekeeping; it retries next time
                log.warning("witnessing: pruning cosignatures failed: %s", exc)

    # ----- leadership -------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                leading = self.ledger.is_leader
                if leading and not self._leading:
                    await self._lead()
                elif not leading and self._leading:
                    self._leading = False
                    self._target = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: try again shortly
                log.warning("witnessing: %s", exc)
            await asyncio.sleep(0.5)

    async def _lead(self) -> None:
        states = await self.store.states()
        for peer in self._peers:
            row = states.get(peer.key.name)
            same_key = row is not None and row.signer == peer.key.signer
            peer.known = int(row.size) if row is not None and same_key else 0
            peer.cosigned = peer.done = -1
            peer.ok, peer.failures = True, 0
        final = await self.store.final_size(self._signers, self.quorum)
        self._final = -1 if final is None else final
        self._target = None
        self._cosigners.clear()
        self._leading = True
        latest = await self.ledger.store.latest_checkpoint()
        if latest is not None:
            await self.offer(latest)
        log.info("witnessing: %d witnesses, quorum %d", len(self._peers), self.quorum)

    # ----- one witness ------------------------------------------------------------------

    async def _work(self, peer: _Peer) -> None:
        while True:
            wait = 1.0
            if peer.backing_off():
                wait = max(0.01, min(wait, peer.retry_at - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(peer.wake.wait(), wait)
            peer.wake.clear()
            target = self._target
            if not self._leading or target is None or not peer.wants(target.size):
                continue
            try:
                await self._submit(peer, target)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is recorded on the witness's status
                await self._failed(peer, exc)
            else:
                peer.ok, peer.failures = True, 0
            peer.done = max(peer.done, target.size)
            if self._leading:
                self._advance()

    async def _submit(self, peer: _Peer, target: StoredCheckpoint) -> None:
        for _ in range(2):
            old = peer.known
            proof = await self._proof(old, target.size)
            body = format_add_checkpoint(AddCheckpointRequest(old, proof, target.note))
            reply = await self._transport.add_checkpoint(peer.key.url, body)
            if reply.status == 200:
                await self._accept(peer, target, reply.body)
                return
            if reply.status == 422:
                raise self._alarm(
                    f"HTTP 422: the witness refused the consistency proof from size {old} to "
                    f"{target.size}: the tree it holds is not an ancestor of ours (fork)"
                )
            if reply.status != 409:
                meaning = _STATUS_MEANINGS.get(reply.status, "unexpected answer")
                detail = reply.body[:300].decode("utf-8", errors="replace").strip()
                suffix = f" ({detail})" if detail else ""
                raise WitnessRejected(f"HTTP {reply.status}: {meaning}{suffix}")
            size = self._conflict_size(reply, old, target)
            peer.known = size
            if size > target.size:
                return  # the witness already holds a newer checkpoint of this log
        raise WitnessRejected("the witness kept answering 409 Conflict")

    def _alarm(self, message: str) -> WitnessRejected:
        """A witness answer proving a rollback or fork: halt the ledger, then report it."""
        self.ledger.raise_rollback(message)
        return WitnessRejected(message)

    async def _proof(self, old: int, size: int) -> list[bytes]:
        """Consistency proofs, shared by the witnesses of a round that hold the same size."""
        key = (old, size)
        if key not in self._proofs:
            if len(self._proofs) > 64:
                self._proofs.clear()
            self._proofs[key] = asyncio.ensure_future(self.ledger.consistency_proof(old, size))
        try:
            return list(await asyncio.shield(self._proofs[key]))
        except Exception:
            self._proofs.pop(key, None)
            raise

    def _conflict_size(self, reply: WitnessReply, old: int, target: StoredCheckpoint) -> int:
        if reply.content_type.split(";")[0].strip().lower() != SIZE_CONTENT_TYPE:
            raise WitnessRejected(f"HTTP 409 without a {SIZE_CONTENT_TYPE} body")
        size = parse_size_conflict(reply.body)
        if size == old:
            raise self._alarm(
                f"the witness holds a different tree of size {size}: this log has shown another "
                "history to someone (split view), or lost data it had published"
            )
        newest = self._newest.size if self._newest is not None else target.size
        if size > newest:
            raise self._alarm(
                f"the witness holds size {size}, beyond this log's {newest} entries: it was "
                "shown a tree this log does not have"
            )
        return size

    async def _accept(self, peer: _Peer, target: StoredCheckpoint, body: bytes) -> None:
        key = peer.key
        signatures = parse_add_checkpoint_response(body)
        text = parse_note(target.note).text
        verify_cosignature(
            signatures, text, key.key_name, key.public_key, not_after=int(time.time()) + _CLOCK_SKEW
        )
        mine = matching_signatures(signatures, key.key_name, key.key_id)[0]
        async with self._note_lock:
            ts = cosignature_timestamp(mine)
            await self.store.save(target.size, key, mine, ts, self._signers)
        peer.known = max(peer.known, target.size)
        peer.cosigned = target.size
        if target.size > self._final:  # a late answer for an older round counts no more
            self._cosigners.setdefault(target.size, set()).add(key.signer)
            await self._reached(target)

    async def _failed(self, peer: _Peer, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, SekishoError | NoteError) else str(exc)
        message = message or type(exc).__name__
        peer.ok = False
        peer.failures += 1
        peer.retry_at = time.monotonic() + min(RETRY_MAX_SECONDS, 0.25 * 2 ** min(peer.failures, 8))
        log.warning("witness %s: %s", peer.key.name, message)
        try:
            await self.store.record(peer.key, size=peer.known, last_error=message[:1000])
        except Exception as store_exc:  # the status row is best effort
            log.warning("witnessing: cannot record the status of %s: %s", peer.key.name, store_exc)
