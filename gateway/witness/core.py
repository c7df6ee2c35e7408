"""The witness's checks on an add-checkpoint request, in the order c2sp.org/tlog-witness sets.

Pure functions over the request and the witness's record of the log; storage
and signing happen in :mod:`gateway.witness.service`. Status codes:

* 400 the body is malformed, or the old size is above the checkpoint size;
* 404 the origin is not a log this witness knows;
* 403 no signature from the log's key verifies;
* 409 the old size is not the size the witness holds (body: that size), or the
  checkpoint has that size but another root (a split view: evidence);
* 422 the consistency proof does not verify (evidence, without an alarm: a
  replayed genuine checkpoint with a garbage proof looks the same).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from gateway.errors import Conflict, Forbidden, NotFound, SekishoError
from gateway.tlog.checkpoint import Checkpoint, parse_checkpoint
from gateway.tlog.merkle import EMPTY_ROOT, ProofError, verify_consistency
from gateway.tlog.note import Note, NoteVerificationError, parse_note, verify_note
from gateway.tlog.witness_protocol import (
    AddCheckpointRequest,
    check_old_size,
    parse_add_checkpoint,
)

__all__ = [
    "BadLogSignature",
    "EvidenceRecord",
    "Inconsistent",
    "LogRecord",
    "SizeConflict",
    "Submission",
    "UnknownLog",
    "UnprovableCheckpoint",
    "check_submission",
    "parse_submission",
]


class UnknownLog(NotFound):
    """The checkpoint's origin is not a log this witness cosigns."""

    code = "unknown_log"


class BadLogSignature(Forbidden):
    """No signature on the checkpoint verifies against the log's key."""

    code = "log_signature_invalid"


class SizeConflict(Conflict):
    """The old size differs from the size this witness holds; ``size`` is what it holds."""

    code = "size_conflict"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class UnprovableCheckpoint(SekishoError):
    """The consistency proof does not verify (HTTP 422)."""

    status = 422
    code = "invalid_consistency_proof"


@dataclass(frozen=True)
class EvidenceRecord:
    """Two views of one log that this witness cannot reconcile."""

    kind: str
    alarm: bool
    origin: str
    held_size: int
    held_note: str | None
    presented_old_size: int
    presented_note: str
    presented_proof: str
    detail: str

    @property
    def fingerprint(self) -> str:
        """Identifies the evidence, so a replayed request is kept once."""
        digest = hashlib.sha256()
        for part in (self.kind, self.origin, str(self.presented_old_size)):
            digest.update(part.encode() + b"\n")
        digest.update(self.presented_proof.encode() + b"\n" + self.presented_note.encode())
        return digest.hexdigest()


class Inconsistent(SizeConflict):
    """Same size, another root: two signed checkpoints that cannot both be true (409)."""

    code = "split_view"

    def __init__(self, message: str, size: int, evidence: EvidenceRecord) -> None:
        super().__init__(message, size)
        self.evidence = evidence


class ProofRejected(UnprovableCheckpoint):
    """A validly signed checkpoint whose consistency with the held one cannot be shown."""

    def __init__(self, message: str, evidence: EvidenceRecord | None) -> None:
        super().__init__(message)
        self.evidence = evidence


@dataclass(frozen=True)
class LogRecord:
    """What the witness holds for one log."""

    log_id: int
    origin: str
    key_name: str
    public_key: bytes
    size: int
    root: bytes
    note: str | None


@dataclass(frozen=True)
class Submission:
    """A parsed add-checkpoint request: the request, its note and its checkpoint."""

    request: AddCheckpointRequest
    note: Note
    checkpoint: Checkpoint


def parse_submission(body: bytes) -> Submission:
    """Parse the body (400 on anything malformed)."""
    request = parse_add_checkpoint(body)
    note = parse_note(request.checkpoint_note)
    return Submission(request, note, parse_checkpoint(note.text))


def _proof_text(proof: list[bytes]) -> str:
    return "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)


def _evidence(
    kind: str, log: LogRecord, sub: Submission, detail: str, *, alarm: bool
) -> EvidenceRecord:
    return EvidenceRecord(
        kind=kind,
        alarm=alarm,
        origin=log.origin,
        held_size=log.size,
        held_note=log.note,
        presented_old_size=sub.request.old_size,
        presented_note=sub.request.checkpoint_note,
        presented_proof=_proof_text(sub.request.consistency_proof),
        detail=detail,
    )


def check_submission(log: LogRecord | None, sub: Submission) -> None:
    """Raise the error the spec prescribes, or return when the checkpoint may be cosigned."""
    checkpoint, request = sub.checkpoint, sub.request
    if log is None:
        raise UnknownLog(f"this witness does not witness the log {checkpoint.origin!r}")
    try:
        verify_note(sub.note, log.key_name, log.public_key)
    except NoteVerificationError as exc:
        raise BadLogSignature(exc.message) from None
    check_old_size(request, checkpoint)
    if request.old_size != log.size:
        raise SizeConflict(
            f"the old size {request.old_size} is not the size {log.size} this witness holds",
            log.size,
        )
    if checkpoint.size == 0 and checkpoint.root_hash != EMPTY_ROOT:
        raise UnprovableCheckpoint("a checkpoint of size 0 must carry the empty tree's root")
    if request.old_size == checkpoint.size:
        if request.consistency_proof:
            raise UnprovableCheckpoint("the proof between two trees of one size must be empty")
        if checkpoint.root_hash != log.root:
            detail = (
                f"two checkpoints of size {log.size} signed by the log key carry different roots"
            )
            raise Inconsistent(
                detail, log.size, _evidence("split_view", log, sub, detail, alarm=True)
            )
        return
    try:
        verify_consistency(
            request.old_size,
            checkpoint.size,
            request.consistency_proof,
            log.root,
            checkpoint.root_hash,
        )
    except ProofError as exc:
        evidence = None
        if request.old_size:
            evidence = _evidence("proof_rejected", log, sub, exc.message, alarm=False)
        raise ProofRejected(exc.message, evidence) from None
