"""document_and_version: the same rows the ORM returns, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.documents.lookup import document_and_version
from gateway.documents.models import Document, DocumentVersion
from tests.gateway.databases import database_url, opened


@pytest.fixture(params=["sqlite", "postgres"])
async def document(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Document]:
    async with opened(database_url(request, tmp_path)):
        doc = await Document.create(
            id=str(uuid.uuid4()),
            title="Supply manifest",
            tags=["fuel", "north"],
            level_rank=2,
            label="SECRET//LOGISTICS",
            current_version=2,
            created_by="alice",
        )
        for number, wrapped in ((1, b"\x00wrapped-one"), (2, None)):
            await DocumentVersion.create(
                document_id=doc.id,
                version=number,
                label="SECRET//LOGISTICS" if number == 2 else "CONFIDENTIAL",
                filename=f"manifest-{number}.pdf",
                size=100 * number,
                ciphertext_size=200 * number,
                segment_size=65536,
                plaintext_sha256="a" * 64,
                ciphertext_sha256="b" * 64,
                wrapped_key=wrapped,
                kek_label="kek",
                blob_key=f"blob-{number}",
                ledger_queue_id=number,
                ledger_index=None if number == 2 else 7,
                created_by="alice",
            )
        yield doc


def fields(model: Document | DocumentVersion) -> dict[str, object]:
    return {name: getattr(model, name) for name in model._meta.db_fields}


async def test_current_version_by_default(document: Document) -> None:
    found, version = await document_and_version(document.id, None)
    assert found is not None and version is not None
    assert fields(found) == fields(await Document.get(id=document.id))
    assert fields(version) == fields(await DocumentVersion.get(document_id=document.id, version=2))
    assert found.tags == ["fuel", "north"] and version.wrapped_key is None


async def test_an_older_version_on_request(document: Document) -> None:
    _, version = await document_and_version(document.id, 1)
    assert version is not None
    assert (version.version, version.label, version.ledger_index) == (1, "CONFIDENTIAL", 7)
    assert version.wrapped_key == b"\x00wrapped-one"
    stored = await DocumentVersion.get(document_id=document.id, version=1)
    assert version.created_at == stored.created_at


async def test_missing_version_and_missing_document(document: Document) -> None:
    found, version = await document_and_version(document.id, 9)
    assert found is not None and found.id == document.id and version is None
    assert await document_and_version(str(uuid.uuid4()), None) == (None, None)
