"""A two-person request about a document above an officer's clearance is, to that officer,
a request that does not exist: viewing, approving or refusing it answers exactly as for an
unknown id (status and body), whatever its status, and each attempt is one recorded refusal.

Before, ``approve`` and ``refuse`` answered 409 with the request's status (``approved``,
``refused``, ``expired``) before the officer's clearance was checked, and a reader was told
which action a request was about (the role's message) where an unknown id was a 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.documents.models import AccessEvent, ApprovalRequest
from tests.gateway.app_fixtures import AppNode
from tests.gateway.documents.test_api import upload
from tests.gateway.documents.test_two_person import person
from tests.gateway.documents.test_two_person_races import node
from tests.gateway.ledger_rows import ledger_entries

Headers = dict[str, str]
__all__ = ["node"]  # the two-person node fixture (SQLite and PostgreSQL), shared


async def _answers(node: AppNode, headers: Headers, request_id: str) -> list[tuple[int, Any]]:
    """View, approve and refuse ``request_id``: each status and JSON body."""
    found = []
    for method, path in (
        ("GET", f"/api/v1/approvals/{request_id}"),
        ("POST", f"/api/v1/approvals/{request_id}/approve"),
        ("POST", f"/api/v1/approvals/{request_id}/refuse"),
    ):
        response = await node.client.request(method, path, headers=headers)
        found.append((response.status, await response.json()))
    return found


async def _last_row() -> int:
    """The id of the newest trail row (0: none yet)."""
    newest = await AccessEvent.all().order_by("-id").first()
    return 0 if newest is None else newest.id


async def _ask_to_destroy(node: AppNode, headers: Headers, content: bytes) -> tuple[str, str]:
    doc = await upload(node, headers, "TOP SECRET", content)
    asked = await node.client.delete(f"/api/v1/documents/{doc}", headers=headers)
    assert asked.status == 202, await asked.text()
    return doc, str((await asked.json())["approval"]["id"])


async def _decide(node: AppNode, headers: Headers, request_id: str, verb: str) -> None:
    done = await node.client.post(f"/api/v1/approvals/{request_id}/{verb}", headers=headers)
    assert done.status == 200, await done.text()


async def test_a_request_above_the_officer_is_answered_as_an_unknown_id(node: AppNode) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    lena = await person("lena", level="SECRET")  # an officer, not cleared for TOP SECRET
    hidden: dict[str, tuple[str, str]] = {}
    hidden["pending"] = await _ask_to_destroy(node, olivia, b"a")
    hidden["refused"] = await _ask_to_destroy(node, olivia, b"b")
    await _decide(node, oscar, hidden["refused"][1], "refuse")
    hidden["approved"] = await _ask_to_destroy(node, olivia, b"c")
    await _decide(node, oscar, hidden["approved"][1], "approve")
    hidden["overdue"] = await _ask_to_destroy(node, olivia, b"d")
    past = datetime.now(UTC) - timedelta(seconds=1)
    await ApprovalRequest.filter(id=hidden["overdue"][1]).update(expires_at=past)

    unknown = await _answers(node, lena, str(uuid.uuid4()))
    assert [status for status, _ in unknown] == [404, 404, 404]
    assert await _answers(node, lena, "nonsense") == unknown
    for name in ("refused", "approved", "overdue", "pending"):  # settled: 409 and the status
        doc, request_id = hidden[name]
        seen = await _last_row()
        accessed = len(await ledger_entries("document.accessed"))
        assert await _answers(node, lena, request_id) == unknown, name
        rows = await AccessEvent.filter(id__gt=seen).order_by("id")
        assert [(r.actor, r.action, r.outcome, r.document_id) for r in rows] == [
            ("person:lena", action, "denied", doc) for action in ("approval", "approve", "refuse")
        ], name
        assert {r.reason for r in rows} == {"level"}, name
        assert len(await ledger_entries("document.accessed")) == accessed + 3, name

    # nothing the officer asked changed a request: the overdue one was not expired by them
    assert await ledger_entries("approval.expired", request=hidden["overdue"][1]) == []
    statuses = {
        name: (await ApprovalRequest.get(id=rid)).status for name, (_, rid) in hidden.items()
    }
    assert statuses == {
        "pending": "pending",
        "refused": "refused",
        "approved": "approved",
        "overdue": "pending",
    }
    listed = await node.client.get("/api/v1/approvals", headers=lena)
    assert (await listed.json())["approvals"] == []

    # an officer cleared for the document is still told (and the overdue one expires)
    settled = await node.client.post(
        f"/api/v1/approvals/{hidden['refused'][1]}/approve", headers=oscar
    )
    assert (settled.status, (await settled.json())["error"]) == (409, "approval_settled")
    shown = await node.client.get(f"/api/v1/approvals/{hidden['overdue'][1]}", headers=oscar)
    assert (await shown.json())["approval"]["status"] == "expired"


async def test_a_person_without_the_officer_role_is_refused_alike_for_every_id(
    node: AppNode,
) -> None:
    olivia = await person("olivia")
    rob = await person("rob", roles=("reader",))  # cleared for the document, not an officer
    _, request_id = await _ask_to_destroy(node, olivia, b"x")
    unknown = await _answers(node, rob, str(uuid.uuid4()))
    assert [status for status, _ in unknown] == [403, 403, 403]
    seen = await _last_row()
    assert await _answers(node, rob, request_id) == unknown
    rows = await AccessEvent.filter(id__gt=seen).order_by("id")
    assert [(r.action, r.outcome, r.reason, r.document_id) for r in rows] == [
        (action, "denied", "role", None) for action in ("approval", "approve", "refuse")
    ]
    assert (await ApprovalRequest.get(id=request_id)).status == "pending"
