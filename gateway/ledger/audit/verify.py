"""Ledger audit: recompute the stored tree from its leaves and check every signed checkpoint.

The audit walks the log left to right, one chunk of leaves at a time, so memory
stays flat whatever the log size. It hashes each leaf's stored data and
compares it with every stored copy of the leaf hash, then recomputes every
subtree the leaves complete from its children and compares it with the stored
hash. Walking bottom-up and stopping at the first difference means each stored
hash is compared with the hash of its already verified children, so the
finding names the culprit: a leaf, a subtree (with its entry range) or a
checkpoint. (:mod:`gateway.ledger.audit.walk` has the mechanics.)

At each stored checkpoint the signed note is verified with the log key and
its size and root are compared with the stored columns and with the root of
the tree recomputed at that size. Every checkpoint is thus a prefix of the
one recomputed tree, which is what consistency between checkpoints means.

Storage is behind :class:`AuditSource`: :mod:`gateway.ledger.audit.sources`
has one over the database (every level stored) and one over C2SP tlog-tiles
fetched remotely (levels 0, 8, 16, ...).

The walk can resume: :class:`AuditResult.state` is the last clean checkpoint
(size and frontier), and passing it back audits only what came after it.
"""

from __future__ import annotations

from gateway.ledger.audit.model import (
    AuditProblem,
    AuditResult,
    AuditSource,
    AuditState,
    Finding,
    LeafRecord,
    LogKey,
    Progress,
    check_checkpoint,
)
from gateway.ledger.audit.walk import Walk

__all__ = [
    "DEFAULT_CHUNK",
    "AuditProblem",
    "AuditResult",
    "AuditSource",
    "AuditState",
    "Finding",
    "LeafRecord",
    "LogKey",
    "Progress",
    "audit",
    "check_checkpoint",
]

DEFAULT_CHUNK = 4096
"""Leaves read per step; a multiple of 256 so remote entry bundles line up."""


async def audit(
    source: AuditSource,
    key: LogKey,
    state: AuditState | None = None,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> AuditResult:
    """Verify the log from ``state`` (the start by default) to its latest checkpoint."""
    if chunk < 1:
        raise ValueError("the audit chunk must hold at least one leaf")
    state = state or AuditState()
    stored = await source.stored_leaf_count()  # before the checkpoint: see _check_unsigned
    latest = await source.latest_checkpoint()
    if latest is None:
        if state.checkpoints or stored:
            return AuditResult(state, 0, _no_checkpoint(state, stored))
        return AuditResult(state, 0)
    walk = Walk(source, key, state, latest.size, chunk, progress)
    try:
        finding = await walk.run()
    except AuditProblem as exc:
        finding = exc.finding
    if finding is None and stored is not None:
        finding = _check_unsigned(stored, latest.size)
    return AuditResult(walk.good, latest.size, finding)


def _no_checkpoint(state: AuditState, stored: int | None) -> Finding:
    if state.checkpoints:
        return Finding(
            "checkpoint_missing",
            state.size,
            f"checkpoint at size {state.size}: no checkpoint is stored any more, though "
            "checkpoints were verified before",
        )
    return Finding(
        "leaf_unsigned",
        0,
        f"leaf 0: {stored} leaves are stored but no signed checkpoint covers them",
    )


def _check_unsigned(stored: int, size: int) -> Finding | None:
    """Leaves beyond the latest checkpoint: the sequencer writes both in one transaction.

    The leaf count is read before the latest checkpoint, so a batch integrated
    in between only makes the checkpoint larger and never raises a false alarm.
    """
    if stored <= size:
        return None
    return Finding(
        "leaf_unsigned",
        size,
        f"leaf {size}: stored beyond the latest signed checkpoint (size {size}); "
        f"{stored - size} leaves are not covered by any signature",
    )
