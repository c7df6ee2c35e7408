"""Check a local file against a document's anchor, without storing it.

The file is hashed as it streams in and compared with the ``plaintext_sha256``
of the version's ``document.registered`` ledger entry (the anchor), and with
the catalogue's copy of that hash. The check is an access like any other: the
policy decision point decides and the decision is recorded (action ``check``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.auth.identity import Identity
from gateway.documents.catalogue import DocumentCatalogue
from gateway.documents.models import Document, DocumentVersion
from gateway.errors import TooLarge


@dataclass(frozen=True)
class FileCheck:
    """The outcome of hashing a file against a version's anchor."""

    document_id: str
    version: int
    label: str
    size: int
    sha256: str
    anchored_sha256: str
    ledger_index: int | None
    catalogue_agrees: bool
    document: Document
    row: DocumentVersion

    @property
    def matches(self) -> bool:
        """True when the file is byte for byte the anchored version."""
        return self.sha256 == self.anchored_sha256


async def check_file(
    catalogue: DocumentCatalogue,
    identity: Identity,
    document_id: str,
    chunks: AsyncIterator[bytes],
    *,
    source: str,
    version: int | None = None,
) -> FileCheck:
    """Hash ``chunks`` and compare with the anchor of the readable version (404 otherwise)."""
    document, row = await catalogue.find(identity, document_id, "check", source, version)
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        size += len(chunk)
        if size > catalogue.max_bytes:
            raise TooLarge(f"a document is at most {catalogue.max_bytes} bytes")
        digest.update(chunk)
    index = await catalogue.resolve_index(row, wait_seconds=5)
    anchored = await _anchored_hash(catalogue, document.id, row.version, index)
    return FileCheck(
        document_id=document.id,
        version=row.version,
        label=row.label,
        size=size,
        sha256=digest.hexdigest(),
        anchored_sha256=row.plaintext_sha256 if anchored is None else anchored,
        ledger_index=index,
        catalogue_agrees=anchored is None or anchored == row.plaintext_sha256,
        document=document,
        row=row,
    )


async def _anchored_hash(
    catalogue: DocumentCatalogue, document_id: str, version: int, index: int | None
) -> str | None:
    """The plaintext hash in the registration entry, if it is integrated and is that entry."""
    if index is None:
        return None
    [entry] = await catalogue.context.ledger.opened_entries(index, index + 1)
    if (
        entry.get("type") != "document.registered"
        or entry.get("document") != document_id
        or entry.get("version") != version
    ):
        return ""  # the catalogue points at the wrong entry: never a match
    value = entry.get("plaintext_sha256")
    return value if isinstance(value, str) else ""
