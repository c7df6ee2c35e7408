"""The witness's records: the logs it witnesses, what it cosigned, and the evidence it keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count

from gateway.errors import BadRequest, Conflict
from gateway.tlog.checkpoint import Checkpoint, CheckpointError
from gateway.tlog.merkle import EMPTY_ROOT
from gateway.tlog.note import NoteError, parse_log_verifier_key
from gateway.witness.core import EvidenceRecord, LogRecord
from gateway.witness.models import Evidence, WitnessedLog

__all__ = ["WitnessStore", "log_record"]


def log_record(row: WitnessedLog) -> LogRecord:
    """The checking view of a stored log."""
    name, _, public_key = parse_log_verifier_key(row.vkey)
    return LogRecord(row.id, row.origin, name, public_key, row.size, bytes(row.root), row.note)


class WitnessStore:
    """Reads and atomic updates of the witness tables."""

    async def log(self, origin: str) -> LogRecord | None:
        """The record for an origin, or None when the log is unknown."""
        row = await WitnessedLog.get_or_none(origin=origin)
        return None if row is None else log_record(row)

    async def advance(self, log: LogRecord, checkpoint: Checkpoint, note: str) -> bool:
        """Move the log to ``checkpoint`` only if it still holds ``log``'s size and root."""
        updated = await WitnessedLog.filter(id=log.log_id, size=log.size, root=log.root).update(
            size=checkpoint.size,
            root=checkpoint.root_hash,
            note=note,
            cosigned_at=datetime.now(UTC),
        )
        return bool(updated)

    async def current_size(self, log_id: int) -> int:
        """The size held now (after a lost race)."""
        row = await WitnessedLog.get(id=log_id)
        return int(row.size)

    async def keep(self, evidence: EvidenceRecord) -> bool:
        """Store evidence once (by fingerprint); True when it is new."""
        try:
            await Evidence.create(
                origin=evidence.origin,
                kind=evidence.kind,
                alarm=evidence.alarm,
                held_size=evidence.held_size,
                held_note=evidence.held_note,
                presented_old_size=evidence.presented_old_size,
                presented_note=evidence.presented_note,
                presented_proof=evidence.presented_proof,
                detail=evidence.detail,
                fingerprint=evidence.fingerprint,
            )
        except IntegrityError:
            return False
        return True

    async def add_log(
        self, origin: str, vkey: str, url: str, *, mirror: bool, token_file: str | None = None
    ) -> bool:
        """Witness a new log (True), or update its URL, mirroring and token file (False).

        ``token_file`` is the absolute path of the file holding the mirror's
        bearer token (None leaves it unchanged, "" forgets it); the file is read
        at every mirroring step, so the token can be rotated in place.
        A log's key cannot be changed here: that would let the new key rewrite
        what the old one committed to. Remove and re-add deliberately instead.
        """
        try:
            Checkpoint(origin, 0, EMPTY_ROOT)
            parse_log_verifier_key(vkey)
        except (CheckpointError, NoteError) as exc:
            raise BadRequest(exc.message) from None
        if mirror and not url:
            raise BadRequest("a mirror needs the log's URL (--url)")
        row = await WitnessedLog.get_or_none(origin=origin)
        if row is None:
            await WitnessedLog.create(
                origin=origin,
                vkey=vkey,
                url=url,
                mirror=mirror,
                token_file=token_file or "",
                root=EMPTY_ROOT,
            )
            return True
        if row.vkey != vkey:
            raise Conflict(
                f"the log {origin!r} is witnessed with another key ({row.vkey}); "
                "remove it first to change its key"
            )
        row.url, row.mirror = url, mirror
        if token_file is not None:
            row.token_file = token_file
        await row.save(update_fields=["url", "mirror", "token_file"])
        return False

    async def remove_log(self, origin: str) -> bool:
        """Stop witnessing a log (its evidence stays); True when it existed."""
        return bool(await WitnessedLog.filter(origin=origin).delete())

    async def logs(self) -> list[WitnessedLog]:
        """Every witnessed log, by origin."""
        return await WitnessedLog.all().order_by("origin")

    async def evidence(self, limit: int = 100) -> list[Evidence]:
        """The newest evidence first."""
        return await Evidence.all().order_by("-id").limit(limit)

    async def evidence_counts(self) -> dict[tuple[str, bool], int]:
        """How much evidence of each (kind, alarm)."""
        rows = (
            await Evidence.annotate(count=Count("id"))
            .group_by("kind", "alarm")
            .values("kind", "alarm", "count")
        )
        return {(str(r["kind"]), bool(r["alarm"])): int(r["count"]) for r in rows}
