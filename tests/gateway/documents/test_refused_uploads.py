"""Refused uploads and new versions are access decisions: one ledger entry and trail row each."""

from __future__ import annotations

from gateway.documents.models import AccessEvent
from tests.gateway.documents.conftest import Gateway, MakePerson
from tests.gateway.documents.test_api import form, upload
from tests.gateway.ledger_rows import ledger_entries


async def _refusals(action: str) -> tuple[list[AccessEvent], list[dict[str, object]]]:
    rows = await AccessEvent.filter(action=action, outcome="denied").order_by("id")
    entries = [
        e
        for e in await ledger_entries("document.accessed")
        if e.get("action") == action and e.get("outcome") == "denied"
    ]
    return rows, entries


async def test_refused_uploads_are_recorded_once_each(
    gateway: Gateway, make_person: MakePerson
) -> None:
    low = await make_person("low", "CONFIDENTIAL", nationality="FRA")
    no_role = await make_person("norole", "SECRET", roles=("reader",))
    attempts = [
        (low, "SECRET", "level"),
        (low, "CONFIDENTIAL//REL TO USA", "releasability"),
        (no_role, "CONFIDENTIAL", "role"),
    ]
    for headers, label, _ in attempts:
        response = await gateway.client.post(
            "/api/v1/documents", data=form("Refused", label, b"x"), headers=headers
        )
        assert response.status == 403, await response.text()
    rows, entries = await _refusals("upload")
    assert [row.reason for row in rows] == [reason for _, _, reason in attempts]
    assert [row.actor for row in rows] == ["person:low", "person:low", "person:norole"]
    assert len(entries) == len(attempts)


async def test_a_refused_new_version_is_recorded(gateway: Gateway, make_person: MakePerson) -> None:
    owner = await make_person("owner", "SECRET", ("A",))
    editor = await make_person("editor", "SECRET")
    doc_id = await upload(gateway, owner, "SECRET", b"v1", "Plan")
    response = await gateway.client.post(
        f"/api/v1/documents/{doc_id}/versions",
        data=form("Plan", "SECRET//A", b"v2"),
        headers=editor,
    )
    assert response.status == 403, await response.text()
    rows, entries = await _refusals("new_version")
    assert [(row.actor, row.document_id, row.reason) for row in rows] == [
        ("person:editor", doc_id, "compartments")
    ]
    assert len(entries) == 1
