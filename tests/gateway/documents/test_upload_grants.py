"""An upload's grant is recorded while its bytes are sealed, and is durable before the
version exists: a refusal of the bytes still leaves the grant on record, and a grant that
cannot be recorded leaves no document and no blob."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.app_keys import DOCUMENTS
from gateway.documents.access import AccessRecorder
from gateway.documents.models import AccessEvent, Document
from gateway.errors import Unavailable
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.ledger_rows import ledger_entries


async def test_an_upload_refused_for_its_size_has_its_grant_on_record(
    gateway: Gateway, make_person: MakePerson
) -> None:
    alice = await make_person("alice", "SECRET")
    gateway.client.app[DOCUMENTS].context.max_bytes = 1024 * 1024

    async def two_mebibytes() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b"x" * 65536

    response = await gateway.client.post(
        "/api/v1/documents?title=Big&label=SECRET", data=two_mebibytes(), headers=alice
    )
    assert response.status == 413
    rows = await AccessEvent.filter(action="upload", actor="person:alice")
    assert [(row.outcome, row.version) for row in rows] == [("granted", 1)]
    entries = [e for e in await ledger_entries("document.accessed") if e["action"] == "upload"]
    assert [(e["actor"], e["outcome"]) for e in entries] == [("person:alice", "granted")]


async def test_a_grant_that_cannot_be_recorded_leaves_no_document_and_no_blob(
    gateway: Gateway, make_person: MakePerson, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_person("alice", "SECRET")
    record = AccessRecorder.record

    async def fail_after_the_bytes_are_sealed(self: AccessRecorder, *a: Any, **k: Any) -> None:
        if k.get("action") != "upload":
            return await record(self, *a, **k)
        await asyncio.sleep(0.3)  # the seal finishes first
        raise Unavailable("the ledger is shutting down")

    monkeypatch.setattr(AccessRecorder, "record", fail_after_the_bytes_are_sealed)
    response = await gateway.client.post(
        "/api/v1/documents?title=Plan&label=SECRET", data=b"mission plan", headers=alice
    )
    assert response.status == 503
    assert (await response.json())["error"] == "unavailable"
    assert await Document.all().count() == 0
    assert [p for p in gateway.settings.blob_dir.rglob("*") if p.is_file()] == []
