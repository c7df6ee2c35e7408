"""The log's witnesses, the cosignatures they returned, and which checkpoint is final.

A checkpoint is *final* once at least ``quorum`` of the configured witnesses
cosigned it. Each cosignature is stored as a row (one per checkpoint size and
witness key) and appended to the checkpoint's stored note, so every reader of
checkpoints sees it; the receipt for an entry uses the newest final checkpoint
that contains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from gateway.config import WitnessEndpoint
from gateway.db.transaction import transaction
from gateway.ledger.models import CheckpointRow, CosignatureRow, WitnessStateRow
from gateway.tlog.note import (
    SIG_ED25519_COSIGNATURE,
    Note,
    Signature,
    cosignature_key_id,
    format_note,
    format_signature_line,
    parse_note,
    parse_signature_line,
    parse_verifier_key,
)

__all__ = [
    "CosignatureStore",
    "Finality",
    "WitnessKey",
    "WitnessStatus",
    "cosigned_note",
    "finality",
]


@dataclass(frozen=True)
class WitnessKey:
    """One configured witness: display name, submission URL and cosigner key."""

    name: str
    url: str
    key_name: str
    public_key: bytes

    @classmethod
    def from_endpoint(cls, endpoint: WitnessEndpoint) -> WitnessKey:
        """From a validated ``[[ledger.witnesses]]`` entry."""
        key_name, _, public_key = parse_verifier_key(
            endpoint.vkey, sig_type=SIG_ED25519_COSIGNATURE
        )
        return cls(endpoint.name or key_name, endpoint.url.rstrip("/"), key_name, public_key)

    @property
    def key_id(self) -> bytes:
        """The cosigner key ID (type 0x04)."""
        return cosignature_key_id(self.key_name, self.public_key)

    @property
    def signer(self) -> str:
        """Identifies the key, not just the name: ``name+keyid``."""
        return f"{self.key_name}+{self.key_id.hex()}"


def cosigned_note(note_text: str, lines: Sequence[str]) -> str:
    """The signed note with cosignature lines appended, at most one per cosigner key.

    A key that already signed the note keeps its line, so repeated rounds on
    one checkpoint never grow the note.
    """
    if not lines:
        return note_text
    note = parse_note(note_text)
    signatures = list(note.signatures)
    present = {(s.name, s.key_id) for s in signatures}
    for line in lines:
        signature = parse_signature_line(line)
        if (signature.name, signature.key_id) not in present:
            present.add((signature.name, signature.key_id))
            signatures.append(signature)
    return format_note(Note(note.text, signatures))


class CosignatureStore:
    """Cosignature rows and witness state rows (Tortoise ``default`` connection)."""

    async def save(
        self, size: int, witness: WitnessKey, signature: Signature, ts: int, signers: Sequence[str]
    ) -> None:
        """In one transaction: keep the cosignature (once), append it to the checkpoint's
        stored note, and record the witness's new size.

        Callers serialise this per process (the note is read, then rewritten).
        """
        now = datetime.now(UTC)
        async with transaction() as conn:
            stored = CosignatureRow.filter(size=size, signer=witness.signer).using_db(conn)
            if not await stored.exists():
                await CosignatureRow.create(
                    size=size,
                    witness=witness.name,
                    signer=witness.signer,
                    line=format_signature_line(signature).rstrip("\n"),
                    timestamp=ts,
                    using_db=conn,
                )
            row = await CheckpointRow.filter(size=size).using_db(conn).first()
            if row is not None:
                lines = (
                    await CosignatureRow.filter(size=size, signer__in=list(signers))
                    .using_db(conn)
                    .order_by("witness")
                    .values_list("line", flat=True)
                )
                note = cosigned_note(row.note, [str(line) for line in lines])
                if note != row.note:
                    await CheckpointRow.filter(size=size).using_db(conn).update(note=note)
            await self._record(conn, witness, now, size=size, last_error=None, last_success_at=now)

    async def lines(self, size: int, signers: Sequence[str]) -> list[str]:
        """The stored cosignature lines of one checkpoint from the given keys, by witness."""
        rows = await CosignatureRow.filter(size=size, signer__in=list(signers)).order_by("witness")
        return [row.line for row in rows]

    async def final_size(self, signers: Sequence[str], quorum: int) -> int | None:
        """The largest checkpoint size cosigned by at least ``quorum`` of ``signers``."""
        if quorum < 1 or not signers:
            return None
        rows = (
            await CosignatureRow.filter(signer__in=list(signers))
            .annotate(count=Count("id"))
            .group_by("size")
            .filter(count__gte=quorum)
            .order_by("-size")
            .limit(1)
            .values("size")
        )
        return int(rows[0]["size"]) if rows else None

    async def prune(self, below: int) -> None:
        """Forget cosignatures of checkpoints smaller than ``below``."""
        await CosignatureRow.filter(size__lt=below).delete()

    async def states(self) -> dict[str, WitnessStateRow]:
        """Every witness state row, by witness name."""
        return {row.name: row for row in await WitnessStateRow.all()}

    async def record(self, witness: WitnessKey, **fields: Any) -> None:
        """Update (or create) one witness's state row; ``last_attempt_at`` is now."""
        async with transaction() as conn:
            await self._record(conn, witness, datetime.now(UTC), **fields)

    async def _record(
        self, conn: BaseDBAsyncClient, witness: WitnessKey, now: datetime, **fields: Any
    ) -> None:
        fields.update(url=witness.url, signer=witness.signer, last_attempt_at=now)
        rows = WitnessStateRow.filter(name=witness.name).using_db(conn)
        if not await rows.update(**fields):
            await WitnessStateRow.create(name=witness.name, using_db=conn, **fields)


@dataclass(frozen=True)
class WitnessStatus:
    """One witness as the log sees it: the size it holds, how far behind, the last error."""

    name: str
    url: str
    size: int
    lag: int
    last_error: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class Finality:
    """How much of the log is final (cosigned by a quorum), and each witness's status."""

    quorum: int
    latest_size: int
    final_size: int | None
    witnesses: tuple[WitnessStatus, ...]

    @property
    def lag(self) -> int:
        """Entries not yet in a final checkpoint."""
        return self.latest_size - (self.final_size or 0)


async def finality(
    witnesses: Sequence[WitnessKey], quorum: int, latest_size: int, store: CosignatureStore
) -> Finality:
    """The finality and witness status the portal and ``/metrics`` show (any process)."""
    states = await store.states()
    views = []
    for key in witnesses:
        row = states.get(key.name)
        if row is None or row.signer != key.signer:
            row = None  # nothing known yet, or recorded for another key
        size = int(row.size) if row is not None else 0
        views.append(
            WitnessStatus(
                name=key.name,
                url=key.url,
                size=size,
                lag=max(0, latest_size - size),
                last_error=row.last_error if row is not None else None,
                last_attempt_at=row.last_attempt_at if row is not None else None,
                last_success_at=row.last_success_at if row is not None else None,
            )
        )
    final = await store.final_size([k.signer for k in witnesses], quorum)
    return Finality(quorum, latest_size, final, tuple(views))
