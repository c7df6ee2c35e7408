"""What an audit works with: the log key, stored leaves, states, results, findings and sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import SekishoError
from gateway.ledger.store import StoredCheckpoint
from gateway.tlog.checkpoint import open_signed_checkpoint
from gateway.tlog.note import NoteError, NoteVerificationError, parse_log_verifier_key

__all__ = [
    "AuditProblem",
    "AuditResult",
    "AuditSource",
    "AuditState",
    "Finding",
    "LeafRecord",
    "LogKey",
    "Progress",
    "check_checkpoint",
    "compare_hash",
    "leaf_mismatch",
]

Progress = Callable[[int, int], None]
"""Called with (entries verified, entries to verify) after each chunk."""


@dataclass(frozen=True)
class LogKey:
    """Whose signature the checkpoints carry: key name, log key (Ed25519 or ECDSA SPKI), origin."""

    name: str
    public_key: bytes
    origin: str

    @classmethod
    def from_vkey(cls, vkey: str, origin: str | None = None) -> LogKey:
        """Parse a note verifier key; the origin defaults to the key name."""
        name, _, public_key = parse_log_verifier_key(vkey.strip())
        return cls(name, public_key, origin or name)


@dataclass(frozen=True)
class Finding:
    """The first problem found: a stable ``code``, the entry ``index`` it concerns, a message."""

    code: str
    index: int
    message: str

    @property
    def fingerprint(self) -> str:
        """Identifies the finding across audits (alerts are raised once per fingerprint)."""
        return f"{self.code}:{self.index}"

    def __str__(self) -> str:
        return self.message


class AuditProblem(SekishoError):
    """Raised by a source when what it reads is itself evidence of a problem."""

    code = "ledger_audit_problem"

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True)
class LeafRecord:
    """One stored leaf: its index, data and, if the source keeps one, a separate leaf hash."""

    index: int
    data: bytes
    leaf_hash: bytes | None = None


@dataclass(frozen=True)
class AuditState:
    """How far an audit got cleanly: a verified checkpoint size and the frontier there."""

    size: int = 0
    frontier: tuple[bytes, ...] = ()
    checkpoints: int = 0

    @property
    def after(self) -> int:
        """Checkpoints larger than this size are still to be verified."""
        return self.size if self.checkpoints else -1


@dataclass(frozen=True)
class AuditResult:
    """The outcome: the state to resume from, the size aimed for, and any finding."""

    state: AuditState
    tree_size: int
    finding: Finding | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.finding is None


class AuditSource(Protocol):
    """What the audit reads. Ranges are of leaf indexes, or subtree indexes at one level."""

    def keeps_level(self, level: int) -> bool:
        """Whether the source stores subtree hashes of this Merkle level."""
        ...

    async def stored_leaf_count(self) -> int | None:
        """One past the largest stored leaf index (None if the source cannot tell)."""
        ...

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The newest checkpoint."""
        ...

    async def checkpoints(self, after_size: int, limit: int) -> list[StoredCheckpoint]:
        """Checkpoints with size > after_size, ascending."""
        ...

    async def leaf_records(self, start: int, end: int) -> list[LeafRecord]:
        """Stored leaves with indexes in [start, end), ascending; missing ones left out."""
        ...

    async def level_hashes(self, level: int, first: int, last: int) -> dict[int, bytes]:
        """Stored hashes of the subtrees ``first..last`` (inclusive) at a kept level."""
        ...


def leaf_mismatch(index: int) -> Finding:
    """A leaf whose data does not hash to (one of) its stored leaf hashes."""
    return Finding(
        "leaf_hash_mismatch",
        index,
        f"leaf {index}: stored data does not hash to the stored leaf hash",
    )


def compare_hash(level: int, index: int, stored: bytes | None, computed: bytes) -> Finding | None:
    """Compare one stored subtree hash with the one computed from verified children."""
    if stored == computed:
        return None
    if level == 0:
        if stored is None:
            return Finding("leaf_missing", index, f"leaf {index}: its leaf hash is not stored")
        return leaf_mismatch(index)
    first, last = index << level, ((index + 1) << level) - 1
    where = f"node at level {level}, index {index} (entries {first}..{last})"
    if stored is None:
        return Finding("node_missing", first, f"{where}: its hash is not stored")
    return Finding(
        "node_hash_mismatch",
        first,
        f"{where}: stored hash does not match the hash of its children",
    )


def check_checkpoint(cp: StoredCheckpoint, key: LogKey, root: bytes) -> Finding | None:
    """Verify one stored checkpoint against the log key, its columns and the recomputed root."""
    where = f"checkpoint at size {cp.size}"
    try:
        checkpoint, _ = open_signed_checkpoint(cp.note, key.origin, key.name, key.public_key)
    except NoteVerificationError as exc:
        return Finding("checkpoint_signature", cp.size, f"{where}: signature invalid ({exc})")
    except NoteError as exc:
        return Finding("checkpoint_malformed", cp.size, f"{where}: the signed note is bad ({exc})")
    if checkpoint.size != cp.size:
        return Finding(
            "checkpoint_size",
            cp.size,
            f"{where}: the signed note is for size {checkpoint.size}, not the stored size",
        )
    if checkpoint.root_hash != cp.root:
        return Finding(
            "checkpoint_root", cp.size, f"{where}: the stored root differs from the signed root"
        )
    if checkpoint.root_hash != root:
        return Finding(
            "checkpoint_tree",
            cp.size,
            f"{where}: the signed root does not match the root recomputed from the stored "
            "leaves and hashes",
        )
    return None
