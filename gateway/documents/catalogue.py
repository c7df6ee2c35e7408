"""Listing, metadata, versions, receipts, downgrade and destruction of documents."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from tortoise.expressions import Q

from gateway.auth.identity import Identity
from gateway.documents.approvals import ApprovalBook, TwoPersonRule, two_person_rule
from gateway.documents.changes import DocumentChanges
from gateway.documents.context import DocumentContext, newest_readable
from gateway.documents.models import ApprovalRequest, Document, DocumentVersion
from gateway.documents.reader import DocumentReader
from gateway.documents.writer import DocumentWriter, NewVersion
from gateway.errors import BadRequest, Unavailable
from gateway.ledger.commitments import decode_opening, expand, partial
from gateway.ledger.service import Ticket
from gateway.policy.labels import Label, LabelError, is_downgrade
from gateway.policy.pdp import RoleRule

MAX_PAGE = 200


def version_view(row: DocumentVersion) -> dict[str, Any]:
    """The JSON view of one version."""
    return {
        "version": row.version,
        "label": row.label,
        "size": row.size,
        "filename": row.filename,
        "media_type": row.media_type,
        "plaintext_sha256": row.plaintext_sha256,
        "ciphertext_sha256": row.ciphertext_sha256,
        "ledger_index": row.ledger_index,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "destroyed": row.destroyed_at is not None,
    }


def document_view(document: Document, row: DocumentVersion, latest: int) -> dict[str, Any]:
    """The JSON view of a document at one version, as one reader may see it.

    ``label`` is that version's own label, never the document's current one, and
    ``current_version`` is ``latest``: the newest version this reader is cleared
    for, so nothing tells of versions above their clearance (not even that they exist).
    """
    return {
        "id": document.id,
        "title": document.title,
        "tags": list(document.tags),
        "label": row.label,
        "current_version": latest,
        "created_by": document.created_by,
        "created_at": document.created_at.isoformat(),
        "destroyed": document.destroyed,
        "version": version_view(row),
    }


READER_FIELDS = (
    "document",
    "version",
    "label",
    "plaintext_sha256",
    "ciphertext_sha256",
    "ciphertext_root",
    "size",
)
"""What of a registration entry a reader cleared for the version is shown."""


class DocumentCatalogue:
    """Everything about documents except streaming their content."""

    def __init__(self, context: DocumentContext, rule: TwoPersonRule | None = None) -> None:
        self._ctx = context
        self.writer = DocumentWriter(context)
        self.reader = DocumentReader(context)
        rule = rule or two_person_rule(context.pdp.scheme, (), 3600)
        book = ApprovalBook(context.ledger, context.recorder)
        self.changes = DocumentChanges(context, self.reader, self.writer, rule, book)

    @property
    def context(self) -> DocumentContext:
        """The shared dependencies (limits, token, ledger)."""
        return self._ctx

    async def close(self) -> None:
        """Stop the hashing helpers (a download still using one stops it when done)."""
        helpers = self._ctx.piece_helpers
        if helpers is not None:
            await asyncio.to_thread(helpers.close)

    @property
    def max_bytes(self) -> int:
        """The largest document accepted."""
        return self._ctx.max_bytes

    def parse_label(self, text: str) -> Label:
        """Parse a label in this node's scheme (400 on bad input)."""
        return self._ctx.pdp.parse(text)

    def check_not_lower(self, current_label: str, new: Label) -> None:
        """A new version may not lower the label; that is a downgrade, with a reason."""
        current = self._ctx.pdp.parse(current_label)
        if is_downgrade(current, new, self._ctx.pdp.scheme):
            raise BadRequest(
                "a new version cannot lower the label; use the downgrade action with a reason",
                code="use_downgrade",
            )

    async def require_role(
        self, identity: Identity, rule: RoleRule, *, action: str, source: str, document_id: str
    ) -> None:
        """Refuse a person without ``rule``'s role before the document is looked up
        (see DocumentContext.require_role)."""
        await self._ctx.require_role(
            identity, rule, action=action, source=source, document_id=document_id
        )

    async def find(
        self,
        identity: Identity,
        document_id: str,
        action: str,
        source: str,
        version: int | None = None,
        *,
        record_grant: bool = True,
    ) -> tuple[Document, DocumentVersion]:
        """The readable document and version (404 otherwise); the decision is recorded
        (a grant only when ``record_grant``: see DocumentContext.find_readable)."""
        return await self._ctx.find_readable(
            identity,
            document_id,
            action=action,
            source=source,
            version=version,
            record_grant=record_grant,
        )

    async def created_view(
        self, identity: Identity, row: DocumentVersion, *, source: str
    ) -> dict[str, Any]:
        """The response to an upload: the document at the new version, with its ledger index."""
        with contextlib.suppress(Unavailable):  # stored and queued; the index can come later
            await self.resolve_index(row, wait_seconds=5)
        document = await Document.get(id=row.document_id)  # the writer recorded the decision
        return document_view(document, row, row.version)  # the uploader's own, newest version

    async def resolve_index(self, row: DocumentVersion, wait_seconds: float = 0) -> int | None:
        """The ledger index of a version's registration, waiting up to ``wait_seconds``."""
        if row.ledger_index is not None:
            return int(row.ledger_index)
        ledger = self._ctx.ledger
        if wait_seconds > 0:
            index = await ledger.integrated(Ticket(row.ledger_queue_id), wait_seconds)
        else:
            found = await ledger.store.indexes_for_queue_ids([row.ledger_queue_id])
            if row.ledger_queue_id not in found:
                return None
            index = int(found[row.ledger_queue_id])
        row.ledger_index = index
        await DocumentVersion.filter(id=row.id).update(ledger_index=index)
        return index

    async def search(
        self,
        identity: Identity,
        *,
        source: str,
        query: str = "",
        tag: str = "",
        level: str = "",
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Documents the person may read, each at the newest version they may read (as
        its metadata shows it), newest first; one ledger entry per request.

        A document whose current version is above the person but an older one is not
        is listed at that older version, so a version added above them does not take
        the document off their list (that would tell of it)."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise BadRequest(f"limit is 1..{MAX_PAGE} and offset >= 0", code="bad_page")
        scheme = self._ctx.pdp.scheme
        wanted_rank = None
        if level:
            try:
                wanted_rank = scheme.rank(scheme.canonical_level(level))
            except LabelError as exc:
                raise BadRequest(f"level: {exc.message}", code="bad_level") from None
        filters: dict[str, Any] = {"destroyed": False}
        if query:
            filters["title__icontains"] = query[:256]
        picked: list[tuple[Document, DocumentVersion | None]] = []  # None: at its current
        skipped = 0
        action = "search" if (query or tag or level) else "list"
        if identity.is_person and identity.level:
            ceiling = scheme.rank(scheme.canonical_level(identity.level))
            within = Q(level_rank__lte=ceiling) | Q(current_version__gt=1)  # an older may be
            candidates = Document.filter(within, **filters).order_by("-created_at")
            async for document, older, rank in self._listed(identity, candidates):
                if tag and tag.lower() not in document.tags:
                    continue
                if wanted_rank is not None and rank != wanted_rank:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                picked.append((document, older))
                if len(picked) >= limit:
                    break
        current = await _current_versions([doc for doc, older in picked if older is None])
        results = [
            document_view(doc, older, older.version)
            if older is not None
            else document_view(doc, current[doc.id], doc.current_version)
            for doc, older in picked
            if older is not None or doc.id in current
        ]
        await self._ctx.recorder.record(
            identity,
            action=action,
            outcome="granted",
            reason=f"results_{len(results)}",
            source=source,
        )
        return results

    async def _listed(
        self, identity: Identity, candidates: Any
    ) -> AsyncIterator[tuple[Document, DocumentVersion | None, int]]:
        """Each readable candidate, in order, with how a listing shows it: at its current
        version (None) or the newest older one the person may read, and that version's
        level rank. The older versions of a page's hidden documents take one query."""
        pdp = self._ctx.pdp
        async for page in _pages(candidates):
            readable = {doc.id for doc in page if pdp.may_read(identity, doc.label).granted}
            hidden = {
                doc.id: doc for doc in page if doc.id not in readable and doc.current_version > 1
            }
            older: dict[str, list[DocumentVersion]] = {}
            if hidden:
                rows = DocumentVersion.filter(document_id__in=list(hidden)).order_by("-version")
                for row in await rows:
                    if row.version < hidden[row.document_id].current_version:
                        older.setdefault(row.document_id, []).append(row)
            for doc in page:
                if doc.id in readable:
                    yield doc, None, doc.level_rank
                elif found := newest_readable(pdp, identity, older.get(doc.id, [])):
                    yield doc, found, pdp.scheme.rank(pdp.parse(found.label).level)

    async def metadata(
        self, identity: Identity, document_id: str, *, source: str, version: int | None = None
    ) -> dict[str, Any]:
        """A document's metadata at its current (or a given) version."""
        document, row = await self._ctx.find_readable(
            identity, document_id, action="metadata", source=source, version=version
        )
        return await self.view(identity, document, row)

    async def view(
        self, identity: Identity, document: Document, row: DocumentVersion
    ) -> dict[str, Any]:
        """The metadata view of a version already found readable (records nothing more:
        the action that found it, e.g. a file check, recorded its one decision)."""
        await self.resolve_index(row)
        readable = await self._readable_versions(identity, document)
        view = document_view(document, row, max(v["version"] for v in readable))
        view["versions"] = readable
        return view

    async def versions(
        self, identity: Identity, document_id: str, *, source: str
    ) -> list[dict[str, Any]]:
        """The versions of a document the person may see (older ones may be labelled higher)."""
        document, _ = await self._ctx.find_readable(
            identity, document_id, action="versions", source=source
        )
        return await self._readable_versions(identity, document)

    async def _readable_versions(
        self, identity: Identity, document: Document
    ) -> list[dict[str, Any]]:
        rows = await DocumentVersion.filter(document_id=document.id).order_by("version")
        return [
            version_view(row) for row in rows if self._ctx.pdp.may_read(identity, row.label).granted
        ]

    async def receipt(
        self, identity: Identity, document_id: str, *, source: str, version: int | None = None
    ) -> str:
        """The tlog-proof receipt of a version's registration."""
        _, row = await self._ctx.find_readable(
            identity, document_id, action="receipt", source=source, version=version
        )
        index = await self.resolve_index(row, wait_seconds=10)
        assert index is not None
        return await self._ctx.ledger.receipt(index)

    async def anchor(
        self, identity: Identity, document_id: str, *, source: str, version: int | None = None
    ) -> dict[str, Any]:
        """A version's registration entry, its receipt, and the opening of what a reader
        cleared for the version may know of it (the hashes, size and label; not who
        uploaded it nor under which key): enough to check a copy of the file offline."""
        _, row = await self._ctx.find_readable(
            identity, document_id, action="receipt", source=source, version=version
        )
        index = await self.resolve_index(row, wait_seconds=10)
        assert index is not None
        data, stored = await self._ctx.ledger.opening(index)
        opening = None
        if stored is not None:
            entry_type = str(json.loads(data)["type"])
            opening = partial(expand(entry_type, decode_opening(stored)), READER_FIELDS)
        return {
            "index": index,
            "entry": data.decode("utf-8"),
            "opening": opening,
            "receipt": await self._ctx.ledger.receipt(index),
        }

    async def new_version(
        self,
        identity: Identity,
        document: Document,
        current: DocumentVersion,
        chunks: AsyncIterator[bytes],
        *,
        label_text: str | None,
        filename: str,
        media_type: str,
        source: str,
    ) -> DocumentVersion:
        """The next version of a found document: same label unless given, never lower."""
        label = self.parse_label(label_text or current.label)
        self.check_not_lower(current.label, label)
        meta = NewVersion(label=label, filename=filename or current.filename, media_type=media_type)
        return await self.writer.add_version(identity, document, meta, chunks, source=source)

    async def downgrade(
        self, identity: Identity, document_id: str, new_label_text: str, reason: str, *, source: str
    ) -> DocumentVersion | ApprovalRequest:
        """Re-encrypt under a lower label as a new version, or a two-person request."""
        return await self.changes.downgrade(
            identity, document_id, new_label_text, reason, source=source
        )

    async def destroy(
        self, identity: Identity, document_id: str, *, source: str
    ) -> int | ApprovalRequest:
        """Crypto-shred every version (the count), or a two-person request."""
        return await self.changes.destroy(identity, document_id, source=source)


async def _current_versions(documents: list[Document]) -> dict[str, DocumentVersion]:
    """The current version row of each document, in one query (not one per document)."""
    if not documents:
        return {}
    wanted = Q(
        *(Q(document_id=doc.id, version=doc.current_version) for doc in documents), join_type="OR"
    )
    return {row.document_id: row for row in await DocumentVersion.filter(wanted)}


async def _pages(query: Any, page: int = 200) -> AsyncIterator[list[Document]]:
    offset = 0
    while True:
        batch = await query.offset(offset).limit(page)
        if batch:
            yield batch
        if len(batch) < page:
            return
        offset += page
