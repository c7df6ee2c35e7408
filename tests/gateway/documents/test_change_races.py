"""Changes of one document made at once, on SQLite and PostgreSQL: the ledger records
only what took effect.

- Two new versions: one is stored, the other is a 409 that leaves no version row, no
  anchor row, no blob and no ``document.registered`` entry (the ledger names one version
  2: the stored one).
- Two destructions: one shreds and records each version once, the other is told the
  document is gone (410) and records no ``document.destroyed`` entry.
- A destruction and a new version: no version is left with its key, and every version
  stored has exactly one registration and one destruction entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.app_keys import LEDGER
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.documents.changes import DocumentChanges
from gateway.documents.models import DocumentVersion, SegmentAnchor
from gateway.documents.writer import DocumentWriter
from tests.gateway.app_fixtures import AppNode
from tests.gateway.documents.test_api import form, upload
from tests.gateway.ledger_rows import ledger_entries

pytestmark = pytest.mark.parametrize("app_node", ["sqlite", "postgres"], indirect=True)


async def person(username: str, *roles: str) -> dict[str, str]:
    """The Authorization header of a new SECRET-cleared person's token."""
    principal = await Principal.create(
        username=username, level="SECRET", nationality="USA", roles=list(roles)
    )
    return {"Authorization": f"Bearer {await issue_token(principal=principal)}"}


class Meeting:
    """Steps that wait until ``count`` calls, of any of them, have arrived, then run."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._arrived = 0
        self._all_here = asyncio.Event()

    def before(self, step: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``step``, made to wait for the meeting."""

        async def wait_then_step(*args: Any, **kwargs: Any) -> Any:
            self._arrived += 1
            if self._arrived == self._count:
                self._all_here.set()
            await asyncio.wait_for(self._all_here.wait(), 30)
            return await step(*args, **kwargs)

        return wait_then_step


async def test_of_two_versions_sealed_at_once_one_is_stored_and_the_other_leaves_nothing(
    app_node: AppNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await person("alice", "reader", "uploader")
    doc_id = await upload(app_node, alice, "SECRET", b"v1", "Plan")
    # both read version 1 as current before either stores
    monkeypatch.setattr(DocumentWriter, "_seal", Meeting(2).before(DocumentWriter._seal))
    answers = await asyncio.gather(
        *(
            app_node.client.post(
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
    anchors = await SegmentAnchor.filter(version_row__in=[v.id for v in versions])
    assert len(anchors) == 2 and await SegmentAnchor.all().count() == 2
    blobs = [p for p in app_node.settings.blob_dir.rglob("*") if p.is_file()]
    assert sorted(p.name for p in blobs) == sorted(v.blob_key.rsplit("/", 1)[-1] for v in versions)

    # the ledger registers version 2 once, with the stored version's anchor and hash
    stored = versions[1]
    [registered] = await ledger_entries("document.registered", document=doc_id, version=2)
    [anchor] = [a for a in anchors if a.version_row == stored.id]
    assert registered["ciphertext_root"] == anchor.root
    assert registered["plaintext_sha256"] == stored.plaintext_sha256
    [stored_answer] = [a for a in answers if a.status == 201]
    index = (await stored_answer.json())["version"]["ledger_index"]
    assert isinstance(index, int)  # this process sequences: the answer names the entry
    [entry] = await app_node.client.app[LEDGER].opened_entries(index, index + 1)
    assert entry == registered


async def test_of_two_destructions_at_once_one_shreds_and_records_and_the_other_is_gone(
    app_node: AppNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await person("alice", "reader", "uploader")
    officers = [await person(name, "reader", "officer") for name in ("olivia", "oscar")]
    doc_id = await upload(app_node, alice, "SECRET", b"v1", "Plan")
    second = await app_node.client.post(
        f"/api/v1/documents/{doc_id}/versions", data=form("Plan", "SECRET", b"v2"), headers=alice
    )
    assert second.status == 201, await second.text()
    # both found the document readable and not destroyed before either shreds
    monkeypatch.setattr(DocumentChanges, "_destroy", Meeting(2).before(DocumentChanges._destroy))
    answers = await asyncio.gather(
        *(app_node.client.delete(f"/api/v1/documents/{doc_id}", headers=o) for o in officers)
    )
    assert sorted(a.status for a in answers) == [200, 410]
    [done] = [a for a in answers if a.status == 200]
    assert await done.json() == {"destroyed_versions": 2}
    [gone] = [a for a in answers if a.status == 410]
    assert (await gone.json())["error"] == "destroyed"
    for version in (1, 2):
        assert (
            len(await ledger_entries("document.destroyed", document=doc_id, version=version)) == 1
        )
    rows = await DocumentVersion.filter(document_id=doc_id)
    assert [r.wrapped_key for r in rows] == [None, None]


async def test_a_destruction_and_a_new_version_at_once_leave_no_key_and_a_true_ledger(
    app_node: AppNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await person("alice", "reader", "uploader")
    olivia = await person("olivia", "reader", "officer")
    doc_id = await upload(app_node, alice, "SECRET", b"v1", "Plan")
    meeting = Meeting(2)  # the destruction and the new version's rows, at once
    monkeypatch.setattr(DocumentChanges, "_destroy", meeting.before(DocumentChanges._destroy))
    monkeypatch.setattr(
        DocumentWriter, "_anchor_and_store", meeting.before(DocumentWriter._anchor_and_store)
    )
    destroyed, added = await asyncio.gather(
        app_node.client.delete(f"/api/v1/documents/{doc_id}", headers=olivia),
        app_node.client.post(
            f"/api/v1/documents/{doc_id}/versions",
            data=form("Plan", "SECRET", b"v2"),
            headers=alice,
        ),
    )
    assert destroyed.status == 200, await destroyed.text()
    assert added.status in (201, 409), await added.text()
    rows = await DocumentVersion.filter(document_id=doc_id).order_by("version")
    assert [r.version for r in rows] == ([1, 2] if added.status == 201 else [1])
    assert all(r.wrapped_key is None and r.destroyed_at is not None for r in rows)
    assert (await destroyed.json())["destroyed_versions"] == len(rows)
    for row in rows:
        registered = await ledger_entries(
            "document.registered", document=doc_id, version=row.version
        )
        shredded = await ledger_entries("document.destroyed", document=doc_id, version=row.version)
        assert (len(registered), len(shredded)) == (1, 1)
    if added.status == 409:  # refused: no registration of a version that never was
        assert await ledger_entries("document.registered", document=doc_id, version=2) == []
