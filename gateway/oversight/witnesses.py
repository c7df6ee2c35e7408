"""Who co-signed a checkpoint: the signature lines of its note other than the log's own.

Witness configuration (names, keys, quorum) belongs to the witness work; until
a node knows its witnesses, :func:`cosignature_summary` is given none and says
"no witnesses configured", while still naming any cosigners present on the note.
Signatures are listed, not verified, here; ``sekisho verify`` and the auditor
verify them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.tlog.note import NoteError, parse_note


@dataclass(frozen=True)
class CosignatureSummary:
    """Witnesses configured for this log, the quorum, and the names that co-signed."""

    configured: tuple[str, ...]
    quorum: int
    cosigners: tuple[str, ...]

    @property
    def cosigned(self) -> bool:
        """True when the quorum is met (and there is a quorum to meet)."""
        return bool(self.configured) and len(self.cosigned_by_configured) >= max(1, self.quorum)

    @property
    def cosigned_by_configured(self) -> tuple[str, ...]:
        """Cosigners that are configured witnesses."""
        return tuple(name for name in self.cosigners if name in self.configured)

    @property
    def text(self) -> str:
        """One line for people: "co-signed by 2 of 3 witnesses" or "no witnesses configured"."""
        if self.configured:
            count = len(self.cosigned_by_configured)
            noun = "witness" if len(self.configured) == 1 else "witnesses"
            return f"co-signed by {count} of {len(self.configured)} {noun} (quorum {self.quorum})"
        if self.cosigners:
            noun = "witness" if len(self.cosigners) == 1 else "witnesses"
            return f"co-signed by {len(self.cosigners)} {noun}; no witnesses configured here"
        return "no witnesses configured"


def note_signers(note: str) -> tuple[str, ...]:
    """Key names of every signature line on a signed note, in order (empty if unparsable)."""
    try:
        return tuple(sig.name for sig in parse_note(note).signatures)
    except NoteError:
        return ()


def cosignature_summary(
    note: str, log_name: str, witnesses: Sequence[str] = (), quorum: int = 0
) -> CosignatureSummary:
    """Summarise the cosignatures on a checkpoint note signed by ``log_name``."""
    cosigners = tuple(dict.fromkeys(n for n in note_signers(note) if n != log_name))
    return CosignatureSummary(tuple(witnesses), quorum if witnesses else 0, cosigners)
