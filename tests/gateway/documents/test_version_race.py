"""Two new versions of one document uploaded at once: one is stored, the other is a 409
that leaves no version row, no anchor row and no blob behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.documents.models import DocumentVersion, SegmentAnchor
from gateway.documents.writer import DocumentWriter
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import form, upload


async def test_of_two_versions_sealed_at_once_one_is_stored_and_the_other_refused(
    gateway: Gateway, make_person: MakePerson, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_person("alice", "SECRET")
    doc_id = await upload(gateway, alice, "SECRET", b"v1", "Plan")
    seal = DocumentWriter._seal
    sealing: list[int] = []
    both_sealing = asyncio.Event()

    async def seal_together(self: DocumentWriter, *args: Any) -> Any:
        sealing.append(1)
        if len(sealing) == 2:
            both_sealing.set()
        await asyncio.wait_for(both_sealing.wait(), 30)  # both read version 1 as current
        return await seal(self, *args)

    monkeypatch.setattr(DocumentWriter, "_seal", seal_together)
    answers = await asyncio.gather(
        *(
            gateway.client.post(
                f"/api/v1/documents/{doc_id}/versions",
                data=form("Plan", "SECRET", body),
                headers=alice,
            )
            for body in (b"v2 from here", b"v2 from there")
        )
    )
    assert sorted(a.status for a in answers) == [201, 409]
    [refused] = [a for a in answers if a.status == 409]
    assert (await refused.json())["error"] == "conflict"
    versions = await DocumentVersion.filter(document_id=doc_id).order_by("version")
    assert [v.version for v in versions] == [1, 2]
    assert await SegmentAnchor.filter(version_row__in=[v.id for v in versions]).count() == 2
    assert await SegmentAnchor.all().count() == 2
    blobs = [p for p in gateway.settings.blob_dir.rglob("*") if p.is_file()]
    assert sorted(p.name for p in blobs) == sorted(v.blob_key.rsplit("/", 1)[-1] for v in versions)
