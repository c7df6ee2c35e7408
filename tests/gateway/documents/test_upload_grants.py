"""An upload's grant is recorded while its bytes are sealed, and is durable before the
version exists: a grant that cannot be recorded leaves no document and no blob (a refusal
of the bytes still leaves the grant on record: test_api's oversize upload)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.documents.access import AccessRecorder
from gateway.documents.models import Document
from gateway.errors import Unavailable
from tests.gateway.documents.conftest import Gateway, MakePerson


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
