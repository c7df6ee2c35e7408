"""Registering document versions: stream, encrypt, store, anchor, then list.

The plaintext streams through the encryptor into a temporary blob; memory stays
flat whatever the size. Only when the blob is durable, the data key wrapped and
the ``document.registered`` entry durably queued are the database rows written,
in one transaction, so no partial document is ever listed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tortoise import connections
from tortoise.exceptions import IntegrityError

from gateway.auth.identity import Identity
from gateway.db.one_hop import RowInsert, RowUpdate, insert_of, update_of
from gateway.db.sqlite_engine import one_hop_writer
from gateway.db.transaction import transaction
from gateway.documents.blobstore import BlobWriter
from gateway.documents.context import DocumentContext
from gateway.documents.envelope import associated_data, label_digest
from gateway.documents.models import Document, DocumentVersion, SegmentAnchor
from gateway.documents.segment_anchor import PieceHasher, pack_leaves, root_hex
from gateway.documents.stream_aead import StreamEncryptor
from gateway.errors import BadRequest, Conflict, Forbidden, TooLarge
from gateway.ledger.entries import make_entry
from gateway.ledger.service import Ticket
from gateway.ledger.store import queue_on_sqlite
from gateway.ledger.transactional import SqliteWrite, Together, queue_entries
from gateway.policy.labels import Label, format_label
from gateway.policy.pdp import UPLOADING, RoleRule

log = logging.getLogger("sekisho.documents")

MAX_TITLE = 256
MAX_TAGS = 32


@dataclass(frozen=True)
class NewVersion:
    """Metadata for a version being registered."""

    label: Label
    title: str = ""
    tags: tuple[str, ...] = ()
    filename: str = ""
    media_type: str = "application/octet-stream"


@dataclass
class _Sealed:
    blob_key: str = ""
    size: int = 0
    ciphertext_size: int = 0
    plaintext_sha256: str = ""
    ciphertext_sha256: str = ""
    leaves: list[bytes] = field(default_factory=list)
    wrapped_key: bytes = b""
    kek_label: str = ""
    kek_version: int = 1
    extra: dict[str, str] = field(default_factory=dict)


def check_title(title: str) -> str:
    """A clean title: 1..256 printable characters."""
    title = title.strip()
    if not title:
        raise BadRequest("a document needs a title", code="missing_title")
    if len(title) > MAX_TITLE or any(ord(c) < 32 for c in title):
        raise BadRequest(f"a title is at most {MAX_TITLE} printable characters", code="bad_title")
    return title


def check_tags(tags: list[str]) -> tuple[str, ...]:
    """Tags: at most 32, each 1..64 characters of letters, digits, - _ ."""
    clean = tuple(sorted({t.strip().lower() for t in tags if t.strip()}))
    if len(clean) > MAX_TAGS:
        raise BadRequest(f"at most {MAX_TAGS} tags", code="bad_tags")
    for tag in clean:
        if len(tag) > 64 or not all(c.isalnum() or c in "-_." for c in tag):
            raise BadRequest(
                f"tag {tag[:70]!r} may hold letters, digits, - _ . only", code="bad_tags"
            )
    return clean


def clean_filename(name: str) -> str:
    """Keep only the last path component, printable, at most 255 characters."""
    base = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '"')
    return base[:255] or "document"


class DocumentWriter:
    """Creates documents and new versions."""

    def __init__(self, context: DocumentContext) -> None:
        self._ctx = context

    async def create(
        self, identity: Identity, meta: NewVersion, chunks: AsyncIterator[bytes], *, source: str
    ) -> DocumentVersion:
        """Register a new document with its first version (the decision is recorded)."""
        document_id = str(uuid.uuid4())
        title = meta.title
        recording = await self._check_may_apply(
            identity,
            meta.label,
            action="upload",
            source=source,
            created=(document_id, 1),
            valid=lambda: check_title(title),
        )
        title = check_title(title)
        sealed = await self._seal_once_recorded(recording, document_id, 1, meta.label, chunks)
        row = await self._anchor_and_store(identity, document_id, 1, meta, sealed, title=title)
        return row

    async def add_version(
        self,
        identity: Identity,
        document: Document,
        meta: NewVersion,
        chunks: AsyncIterator[bytes],
        *,
        rule: RoleRule = UPLOADING,
        action: str = "new_version",
        source: str,
        together: Callable[[int], Together] | None = None,
    ) -> DocumentVersion:
        """Register the next version of an existing document (the decision is recorded).

        ``rule`` is the role the calling action needs: uploading by default, the
        officer's for a downgrade (which writes a version but is no upload). The
        caller found the document with ``record_grant=False``: this records the
        action's one decision, granted or not. ``together(version)``, asked once the
        bytes are sealed, gives what is written in the version's own transaction
        (a downgrade's entry, an approval's claim), so neither lands without the other.
        """
        version = document.current_version + 1
        recording = await self._check_may_apply(
            identity,
            meta.label,
            rule,
            action=action,
            source=source,
            document_id=document.id,
            created=(document.id, version),
        )
        sealed = await self._seal_once_recorded(recording, document.id, version, meta.label, chunks)
        bound = None if together is None else lambda: together(version)
        return await self._anchor_and_store(
            identity, document.id, version, meta, sealed, together=bound
        )

    async def _check_may_apply(
        self,
        identity: Identity,
        label: Label,
        rule: RoleRule = UPLOADING,
        *,
        action: str,
        source: str,
        document_id: str | None = None,
        created: tuple[str, int],
        valid: Callable[[], object] = lambda: None,
    ) -> asyncio.Task[None]:
        """Refuse a label the person may not apply (the refusal recorded first); for a grant,
        start recording it and return that recording.

        A grant names the document and version being ``created``; a refused upload
        names no document (none exists), a refused new version its document only.
        A grant is recorded only once ``valid`` (the request's own checks, e.g. the
        title) passed, so a bad request leaves no grant for an id that will never
        exist. The grant's record runs while the bytes are sealed; see
        :meth:`_seal_once_recorded`.
        """
        decision = self._ctx.pdp.may_apply(identity, label, rule)
        if decision.granted:
            valid()

        async def record() -> None:
            await self._ctx.recorder.record(
                identity,
                action=action,
                outcome="granted" if decision.granted else "denied",
                reason=decision.reason,
                source=source,
                document_id=created[0] if decision.granted else document_id,
                version=created[1] if decision.granted else None,
            )

        if decision.granted:
            return asyncio.ensure_future(record())
        await record()
        if decision.reason == "role":
            raise Forbidden(rule.refusal)
        raise Forbidden(
            f"you cannot label a document above your own clearance ({decision.reason})",
            code="label_above_clearance",
        )

    async def _seal_once_recorded(
        self,
        recording: asyncio.Task[None],
        document_id: str,
        version: int,
        label: Label,
        chunks: AsyncIterator[bytes],
    ) -> _Sealed:
        """Seal the bytes while the grant is recorded; return once both are done.

        The sealed blob is listed nowhere, so the action takes effect only when the
        version's rows are stored, after this: the decision is durable first, as when
        it was recorded before the first byte was read. A refusal of the bytes (too
        large, empty) still waits for the grant's record; a failed record deletes the
        sealed blob and fails the upload.
        """
        try:
            sealed = await self._seal(document_id, version, label, chunks)
        except asyncio.CancelledError:
            # the record goes on by itself (nothing was stored); nobody awaits it now
            recording.add_done_callback(_report_orphaned_record)
            raise
        except BaseException:
            await asyncio.shield(recording)
            raise
        try:
            await asyncio.shield(recording)
        except BaseException:
            await self._ctx.blobs.delete(sealed.blob_key)
            raise
        return sealed

    async def _seal(
        self, document_id: str, version: int, label: Label, chunks: AsyncIterator[bytes]
    ) -> _Sealed:
        data_key = os.urandom(32)
        encryptor = StreamEncryptor(
            data_key, associated_data(document_id, version, label), self._ctx.segment_size
        )
        writer = await self._ctx.blobs.create()
        sealed = _Sealed()
        plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
        pieces = PieceHasher(self._ctx.segment_size)
        try:
            await _emit(writer, (cipher_hash, pieces), sealed, encryptor.header())
            async for chunk in chunks:
                sealed.size += len(chunk)
                if sealed.size > self._ctx.max_bytes:
                    raise TooLarge(f"a document is at most {self._ctx.max_bytes} bytes")
                plain_hash.update(chunk)
                await _emit(writer, (cipher_hash, pieces), sealed, encryptor.update(chunk))
            if sealed.size == 0:
                raise BadRequest("the file is empty", code="empty_file")
            await _emit(writer, (cipher_hash, pieces), sealed, encryptor.finalize())
            sealed.kek_label, sealed.kek_version = await self._ctx.current_kek()
            sealed.wrapped_key = await self._ctx.token.wrap_data_key(sealed.kek_label, data_key)
            sealed.blob_key = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        sealed.plaintext_sha256 = plain_hash.hexdigest()
        sealed.ciphertext_sha256 = cipher_hash.hexdigest()
        sealed.leaves = pieces.finish()
        return sealed

    async def _anchor_and_store(
        self,
        identity: Identity,
        document_id: str,
        version: int,
        meta: NewVersion,
        sealed: _Sealed,
        *,
        title: str | None = None,
        together: Callable[[], Together] | None = None,
    ) -> DocumentVersion:
        """Record the ``document.registered`` entry and store the version's rows.

        A new document's entry is recorded first (nobody else can write its id); a
        new version's entry is queued in the transaction that writes its rows, so
        the loser of two versions written at once leaves no entry, as it leaves no row.
        ``together`` (new versions only) adds to that transaction.
        """
        registration: dict[str, Any] = {
            "document": document_id,
            "version": version,
            "label": label_digest(meta.label),
            "plaintext_sha256": sealed.plaintext_sha256,
            "ciphertext_root": root_hex(sealed.leaves),
            "size": sealed.size,
            "kek": sealed.kek_label,
            "kek_version": sealed.kek_version,
            "actor": identity.actor,
        }
        ledger = self._ctx.ledger
        try:
            if title is not None:
                ticket = await ledger.record("document.registered", **registration)
                return await self._store_rows(
                    identity, document_id, version, meta, sealed, title, ticket
                )
            ledger.ensure_open()  # a rolled-back or stopping ledger takes no entry
            entry = make_entry("document.registered", ledger.node, **registration)
            extra = together() if together is not None else Together()
            row = await self._store_rows(
                identity, document_id, version, meta, sealed, None, entry, extra
            )
        except BaseException:
            await self._ctx.blobs.delete(sealed.blob_key)
            raise
        row.ledger_index = await ledger.integrate_now(row.ledger_queue_id, wait_seconds=5)
        if extra.first or extra.then:
            ledger.nudge()
        return row

    async def _store_rows(
        self,
        identity: Identity,
        document_id: str,
        version: int,
        meta: NewVersion,
        sealed: _Sealed,
        title: str | None,
        registered: Ticket | bytes,
        together: Together | None = None,
    ) -> DocumentVersion:
        """Write the rows in one transaction; ``registered`` is the recorded entry's
        ticket, or the entry to queue in that transaction (with ``together``)."""
        entry = None if isinstance(registered, Ticket) else registered
        ticket = registered if isinstance(registered, Ticket) else Ticket(0)  # id: once queued
        label_text = format_label(meta.label)
        rank = self._ctx.pdp.scheme.rank(meta.label.level)
        document = None
        if title is not None:
            document = Document(
                id=document_id,
                title=title,
                tags=list(meta.tags),
                level_rank=rank,
                label=label_text,
                current_version=version,
                created_by=identity.name,
            )
        row = DocumentVersion(
            document_id=document_id,
            version=version,
            label=label_text,
            filename=clean_filename(meta.filename),
            media_type=meta.media_type[:127] or "application/octet-stream",
            size=sealed.size,
            ciphertext_size=sealed.ciphertext_size,
            segment_size=self._ctx.segment_size,
            plaintext_sha256=sealed.plaintext_sha256,
            ciphertext_sha256=sealed.ciphertext_sha256,
            wrapped_key=sealed.wrapped_key,
            kek_label=sealed.kek_label,
            kek_version=sealed.kek_version,
            blob_key=sealed.blob_key,
            ledger_queue_id=ticket.queue_id,
            ledger_index=ticket.index,  # known when this process sequences
            created_by=identity.name,
        )
        anchor = SegmentAnchor(root=root_hex(sealed.leaves), leaves=pack_leaves(sealed.leaves))
        advance = (  # a new version moves its document on, if nobody else did meanwhile
            None
            if document is not None
            else Document.filter(
                id=document_id, current_version=version - 1, destroyed=False
            ).update(current_version=version, label=label_text, level_rank=rank)
        )
        try:
            writer = one_hop_writer(connections.get("default"))
            if writer is not None:
                stored = _StoredRows(
                    insert_of(document) if document is not None else None,
                    update_of(advance) if advance is not None else None,
                    entry,
                    (together or Together()).on_sqlite(self._ctx.ledger),
                    insert_of(row),
                    anchor,
                    insert_of(anchor),
                )
                await writer.write_at_once(stored.write)
                return row
            async with transaction():
                if document is not None:
                    await document.save(force_create=True)
                if together is not None:
                    await together.write_first(self._ctx.ledger)
                if advance is not None and await advance != 1:
                    raise Conflict("the document changed meanwhile; upload again")
                if entry is not None:
                    [row.ledger_queue_id] = await queue_entries(self._ctx.ledger, [entry])
                if together is not None:
                    await together.write_then(self._ctx.ledger)
                await row.save(force_create=True)
                anchor.version_row = row.id
                await anchor.save(force_create=True)
                return row
        except (IntegrityError, sqlite3.IntegrityError):
            raise Conflict("the document changed meanwhile; upload again") from None


@dataclass(frozen=True)
class _StoredRows:
    """A version's rows written in one hop on SQLite (see gateway/db/one_hop.py)."""

    document: RowInsert | None
    """The new document's row; None for a new version of an existing one."""
    advance: RowUpdate | None
    """Moves an existing document to this version, if nobody else did meanwhile."""
    entry: bytes | None
    """The version's ``document.registered`` entry, queued here (None: recorded before)."""
    together: tuple[SqliteWrite, SqliteWrite]
    """What else the change writes (:meth:`Together.on_sqlite`): before it, and after the entry."""
    version: RowInsert
    anchor: SegmentAnchor
    anchor_insert: RowInsert

    def write(self, db: sqlite3.Connection) -> None:
        write_first, write_then = self.together
        if self.document is not None:
            self.document.run(db)
        write_first(db)
        if self.advance is not None and self.advance.run(db) != 1:
            raise Conflict("the document changed meanwhile; upload again")
        if self.entry is not None:
            [self.version.instance.ledger_queue_id] = queue_on_sqlite([self.entry], db)
        write_then(db)
        self.version.run(db)
        self.anchor.version_row = self.version.instance.pk
        self.anchor_insert.run(db)


def _report_orphaned_record(recording: asyncio.Task[None]) -> None:
    """Log a cancelled upload's grant whose record then failed (nobody awaits it)."""
    if not recording.cancelled() and (failure := recording.exception()) is not None:
        log.error("a cancelled upload's grant was not recorded: %s", failure)


async def _emit(
    writer: BlobWriter, hashes: tuple[hashlib._Hash, PieceHasher], sealed: _Sealed, data: bytes
) -> None:
    if data:
        for digest in hashes:
            digest.update(data)
        sealed.ciphertext_size += len(data)
        await writer.write(data)
