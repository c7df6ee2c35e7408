"""Key-encryption-key versions and rotation: rewrap every data key, never touch payloads.

Version 1 is the KEK ``settings.keys.kek`` that ``init`` creates; version N > 1
lives on the token as ``<settings.keys.kek>-v<N>``. Statuses: ``pending``
(being created), ``active`` (wraps new uploads; exactly one), ``retiring``
(still unwraps rows not yet rewrapped) and ``removed`` (destroyed on the token).

Rotation creates and activates a new version, then rewraps each document
version under an older one: unwrap with the row's own KEK, wrap with the new
one, and write the row in an UPDATE guarded by the old values, so a concurrent
destroy (wrapped key set to NULL) is never undone. Every step is restartable:
running rotation again first finishes a pending version or resumes rewrapping,
and only starts a new version when nothing is left under an older one. A lock
(flock beside SQLite, an advisory lock on PostgreSQL) lets one rotation or
removal run at a time; the gateway keeps serving meanwhile. Unwrapped data
keys exist only in memory for one rewrap; they are never logged or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count

from gateway.config import Settings
from gateway.db.transaction import transaction
from gateway.documents.models import DocumentVersion, KekVersion
from gateway.errors import Conflict, NotFound
from gateway.ledger.leadership import FileLeadership, Leadership, PostgresLeadership
from gateway.ledger.queued import EntryRecorder, QueuedLedger
from hsm import Function, HsmError, KekType, OperationFailed, Token

log = logging.getLogger("sekisho.kek")

PENDING, ACTIVE, RETIRING, REMOVED = "pending", "active", "retiring", "removed"
DEFAULT_BATCH = 200
SETTLE_SECONDS = 60
MAX_SWEEPS = 5
DEFAULT_ACTOR = "operator"
Progress = Callable[[int, int], None]


class KekConflict(Conflict):
    """The KEK state does not allow this step (yet)."""

    code = "kek_conflict"


@dataclass
class RotationReport:
    """What one ``rotate_kek`` call did."""

    key: str
    new_version: int
    new_label: str
    started: bool  # True: this call created the version; False: it resumed rewrapping
    old_version: int | None = None
    rewrapped: int = 0
    skipped: int = 0  # rows changed meanwhile (destroyed, or rewrapped by another run)
    failed: list[tuple[str, int]] = field(default_factory=list)  # (document id, version)
    remaining: int = 0  # rows still under an older version (a limit stopped the run)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """True when no row is left under an older version."""
        return self.remaining == 0 and not self.failed


@dataclass(frozen=True)
class KekState:
    """One KEK version and how many document versions it wraps."""

    version: int
    label: str
    status: str
    created_at: datetime
    rows: int

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "version": self.version,
            "label": self.label,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "rows": self.rows,
        }


def version_label(base: str, version: int) -> str:
    """The token label of a KEK version."""
    return base if version == 1 else f"{base}-v{version}"


async def ensure_initial_version(settings: Settings) -> bool:
    """Register version 1 (``settings.keys.kek``) if no version exists; True if created."""
    if await KekVersion.exists():
        return False
    try:
        await KekVersion.create(version=1, label=settings.keys.kek, status=ACTIVE)
    except IntegrityError:  # another process registered it first
        return False
    return True


async def kek_states(settings: Settings) -> list[KekState]:
    """Every KEK version with the number of live wrapped keys under it."""
    await ensure_initial_version(settings)
    counts = (
        await DocumentVersion.filter(wrapped_key__isnull=False)
        .annotate(rows=Count("id"))
        .group_by("kek_version")
        .values("kek_version", "rows")
    )
    by_version = {int(c["kek_version"]): int(c["rows"]) for c in counts}
    versions = await KekVersion.all().order_by("version")
    return [
        KekState(v.version, v.label, v.status, v.created_at, by_version.get(v.version, 0))
        for v in versions
    ]


async def rotate_kek(
    token: Token,
    settings: Settings,
    *,
    progress: Progress | None = None,
    batch: int = DEFAULT_BATCH,
    limit: int | None = None,
    ledger: EntryRecorder | None = None,
    actor: str = DEFAULT_ACTOR,
    kek_type: KekType | None = None,
) -> RotationReport:
    """Rotate to a new KEK (or resume an unfinished rotation) and rewrap data keys.

    Needs the database open. ``limit`` stops after that many rows (re-run to
    continue); ``progress(done, total)`` is called after each batch. The new
    KEK is of ``kek_type``, by default the one the token's capability profile
    chooses, so rotation can move every document to another KEK type.
    """
    if batch < 1 or (limit is not None and limit < 0):
        raise ValueError("batch must be >= 1 and limit >= 0")
    started_at = time.monotonic()
    recorder = ledger or QueuedLedger(settings.node.name)
    async with _exclusive(settings):
        await ensure_initial_version(settings)
        report = await _target(token, settings, recorder, actor, kek_type)
        await _rewrap_all(token, report, recorder, actor, batch, limit, progress)
    report.seconds = time.monotonic() - started_at
    return report


async def remove_kek(
    token: Token,
    settings: Settings,
    version: int,
    *,
    ledger: EntryRecorder | None = None,
    actor: str = DEFAULT_ACTOR,
    settle_seconds: float = SETTLE_SECONDS,
) -> tuple[str, bool]:
    """Destroy a retired KEK version no row uses; returns (label, whether it was removed now).

    Refused for the active version, while any document version still uses it,
    and for ``settle_seconds`` after it was retired (an upload sealed under it
    just before the switch may still be committing).
    """
    recorder = ledger or QueuedLedger(settings.node.name)
    async with _exclusive(settings):
        row = await KekVersion.get_or_none(version=version)
        if row is None:
            raise NotFound(f"there is no KEK version {version}")
        if row.status == REMOVED:
            return row.label, False
        if row.status != RETIRING:
            raise KekConflict(
                f"KEK version {version} is {row.status}; only a retired version can be "
                "removed (rotate first)"
            )
        await _check_unused(version, settle_seconds)
        on_token = await token.has_key(row.label)
        kind = await token.kek_type(row.label) if on_token else None
        await recorder.record(
            "key.removed",
            key=settings.keys.kek,
            version=version,
            algorithm=kind.algorithm.value if kind else None,
            actor=actor,
        )
        if on_token:
            await token.destroy_key(row.label)
        await KekVersion.filter(version=version).update(status=REMOVED)
        log.info("KEK version %d (%s) destroyed", version, row.label)
        return row.label, True


async def _check_unused(version: int, settle_seconds: float) -> None:
    in_use = await DocumentVersion.filter(kek_version=version, wrapped_key__isnull=False).count()
    if in_use:
        raise KekConflict(
            f"{in_use} document {'version still uses' if in_use == 1 else 'versions still use'} "
            f"KEK version {version}; "
            "run 'sekisho keys rotate-kek' to finish rewrapping them"
        )
    successor = await KekVersion.filter(version__gt=version).order_by("version").first()
    if successor is not None:
        age = (datetime.now(UTC) - successor.created_at).total_seconds()
        if age < settle_seconds:
            raise KekConflict(
                f"KEK version {version} was retired {age:.0f} s ago; uploads sealed under it "
                f"may still be committing: try again in {settle_seconds - age:.0f} s"
            )


async def _target(
    token: Token,
    settings: Settings,
    ledger: EntryRecorder,
    actor: str,
    kek_type: KekType | None = None,
) -> RotationReport:
    """The version to rewrap to: a pending one, the active one if unfinished, or a new one."""
    versions = await KekVersion.all().order_by("version")
    active = [v for v in versions if v.status == ACTIVE]
    current = active[-1] if active else None
    pending = [v for v in versions if v.status == PENDING]
    if not pending and current is not None and await _rows_below(current.version) > 0:
        return RotationReport(settings.keys.kek, current.version, current.label, started=False)
    if pending:
        target = pending[-1]
    else:
        number = max((v.version for v in versions), default=1) + 1
        label = version_label(settings.keys.kek, number)
        if await token.has_key(label):
            raise KekConflict(
                f"the token already holds a key labelled {label!r} that is no registered "
                "KEK version; move it aside before rotating"
            )
        target = await KekVersion.create(version=number, label=label, status=PENDING)
    if not await token.has_key(target.label):
        await token.generate_kek(target.label, await _new_kek_type(token, target.label, kek_type))
    await _check_new_kek(token, target)
    made = await token.kek_type(target.label)
    old = current.version if current else None
    await ledger.record(
        "key.rotated",
        key=settings.keys.kek,
        old_version=old,
        new_version=target.version,
        algorithm=made.algorithm.value,
        actor=actor,
    )
    async with transaction():
        await KekVersion.filter(status=ACTIVE).update(status=RETIRING)
        await KekVersion.filter(version=target.version).update(status=ACTIVE)
    log.info("KEK version %d (%s) is active", target.version, target.label)
    return RotationReport(
        settings.keys.kek, target.version, target.label, started=True, old_version=old
    )


async def _check_new_kek(token: Token, target: KekVersion) -> None:
    """A new KEK must unwrap what it wraps before it is activated; else it is removed."""
    try:
        await token.check_kek(target.label)
    except HsmError as exc:
        await token.destroy_key(target.label)
        await KekVersion.filter(version=target.version, status=PENDING).delete()
        raise KekConflict(
            f"the new KEK {target.label!r} failed its wrap/unwrap test and was removed; "
            f"no document moved: {exc.message}"
        ) from None


async def _new_kek_type(token: Token, label: str, wanted: KekType | None) -> KekType:
    """The asked-for KEK type, else the token profile's choice; refused if the token cannot."""
    profile = await token.owner(label).profile()  # the KEK's token ([hsm.keys] kek)
    choice = profile.choice(Function.KEK)
    if wanted is None:
        return KekType.for_algorithm(profile.require(Function.KEK, label).algorithm)
    usable = [o for o in (choice.chosen, *choice.alternatives) if o is not None and o.supported]
    if not any(KekType.for_algorithm(o.algorithm) is wanted for o in usable):
        raise KekConflict(f"KEK type {wanted.value} (key {label!r}) is not possible on this token")
    return wanted


async def _rows_below(version: int, exclude: set[int] | None = None) -> int:
    query = DocumentVersion.filter(kek_version__lt=version, wrapped_key__isnull=False)
    if exclude:
        query = query.exclude(id__in=sorted(exclude))
    return await query.count()


async def _rewrap_all(
    token: Token,
    report: RotationReport,
    ledger: EntryRecorder,
    actor: str,
    batch: int,
    limit: int | None,
    progress: Progress | None,
) -> None:
    """Sweep rows under older versions (by id) until a sweep finds none, or the limit."""
    failed_ids: set[int] = set()
    total = await _rows_below(report.new_version)
    done = 0
    if progress:
        progress(0, total)
    for _sweep in range(MAX_SWEEPS):
        last_id, seen = 0, 0
        while limit is None or done < limit:
            size = batch if limit is None else min(batch, limit - done)
            query = DocumentVersion.filter(
                kek_version__lt=report.new_version, wrapped_key__isnull=False, id__gt=last_id
            )
            if failed_ids:
                query = query.exclude(id__in=sorted(failed_ids))
            rows = await query.order_by("id").limit(size).values(*_COLUMNS)
            if not rows:
                break
            last_id, seen, done = rows[-1]["id"], seen + len(rows), done + len(rows)
            await _rewrap_batch(token, report, rows, failed_ids, ledger, actor)
            if progress:
                progress(done, max(total, done))
        if seen == 0 or (limit is not None and done >= limit):
            break
    report.remaining = await _rows_below(report.new_version, failed_ids)


_COLUMNS = ("id", "document_id", "version", "wrapped_key", "kek_label", "kek_version")


async def _rewrap_batch(
    token: Token,
    report: RotationReport,
    rows: list[dict[str, Any]],
    failed_ids: set[int],
    ledger: EntryRecorder,
    actor: str,
) -> None:
    """Rewrap on the token (concurrently, so the token thread batches), then one transaction."""
    fresh = await asyncio.gather(*(_rewrapped(token, report.new_label, row) for row in rows))
    async with transaction():
        for row, new_key in zip(rows, fresh, strict=True):
            if new_key is None:
                continue
            updated = await DocumentVersion.filter(
                id=row["id"],
                kek_version=row["kek_version"],
                kek_label=row["kek_label"],
                wrapped_key=bytes(row["wrapped_key"]),
            ).update(
                wrapped_key=new_key, kek_label=report.new_label, kek_version=report.new_version
            )
            if updated:
                report.rewrapped += 1
            else:
                report.skipped += 1
    for row, new_key in zip(rows, fresh, strict=True):
        if new_key is None:
            failed_ids.add(row["id"])
            report.failed.append((str(row["document_id"]), int(row["version"])))
            await _alert(ledger, actor, str(row["document_id"]), int(row["version"]))


async def _rewrapped(token: Token, new_label: str, row: dict[str, Any]) -> bytes | None:
    """The row's data key wrapped under ``new_label``; None if it does not unwrap."""
    try:
        data_key = await token.unwrap_data_key(row["kek_label"], bytes(row["wrapped_key"]))
    except OperationFailed:
        return None
    try:
        return await token.wrap_data_key(new_label, data_key)
    finally:
        del data_key


async def _alert(ledger: EntryRecorder, actor: str, document_id: str, version: int) -> None:
    log.warning("document %s v%d: wrapped key does not unwrap; not rewrapped", document_id, version)
    try:
        await ledger.record(
            "alert.raised",
            alert="integrity",
            detail_code="wrapped_key",
            document=document_id,
            version=version,
            actor=actor,
        )
    except Exception as exc:  # the report names the row either way
        log.error("could not ledger the alert for %s v%d: %s", document_id, version, exc)


@contextlib.asynccontextmanager
async def _exclusive(settings: Settings) -> AsyncIterator[None]:
    """One KEK rotation or removal at a time, across processes."""
    lock: Leadership
    if settings.database_url.startswith("sqlite://"):
        lock = FileLeadership(settings.data_dir / "kek-rotation.lock")
    else:
        digest = hashlib.sha256(b"sekisho-kek-rotation:" + settings.keys.kek.encode()).digest()
        lock = PostgresLeadership(settings.database_url, int.from_bytes(digest[:8], signed=True))
    if not await lock.try_acquire():
        await lock.release()
        raise KekConflict("another KEK rotation or removal is running; try again when it ends")
    try:
        yield
    finally:
        await lock.release()
