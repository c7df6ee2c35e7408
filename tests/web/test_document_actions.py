"""Document page actions in-process: new version, downgrade, destroy, and the two-person
rule's approvals page (the browser flows are in test_browser_document_actions.py)."""

from __future__ import annotations

import re

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway.documents.models import AccessEvent, ApprovalRequest, Document, DocumentVersion
from tests.web.conftest import Portal, form_token, ledger_entries, person, sign_in
from tests.web.test_portal_pages import upload

OFFICER = ("reader", "uploader", "officer")


@pytest.fixture
def portal_settings() -> dict[str, str]:
    """TOP SECRET documents need a second officer."""
    return {"SEKISHO_DOCUMENTS_TWO_PERSON_LEVELS": "TOP SECRET"}


async def switch(client: TestClient, username: str) -> None:  # type: ignore[type-arg]
    """Sign out whoever is signed in, and sign ``username`` in."""
    client.session.cookie_jar.clear()
    response = await sign_in(client, username)
    assert response.status == 303


def version_form(token: str, content: bytes, level: str = "SECRET") -> FormData:
    form = FormData()
    form.add_field("csrf", token)
    form.add_field("level", level)
    form.add_field("file", content, filename="v2.txt", content_type="text/plain")
    return form


async def test_new_version_keeps_or_raises_the_label_never_lowers(portal: Portal) -> None:
    await person("alice", level="TOP SECRET")
    await sign_in(portal.client, "alice")
    doc = await upload(portal.client, "Depot plan", "SECRET")
    path = f"/documents/{doc}/new-version"
    token = await form_token(portal.client, path)
    lower = await portal.client.post(path, data=version_form(token, b"v2", "CONFIDENTIAL"))
    assert lower.status == 400
    assert "cannot lower the label" in await lower.text()
    sent = await portal.client.post(
        path,
        data=version_form(token, b"v2"),
        headers={"X-Sekisho-Upload": "progress"},
        allow_redirects=False,
    )
    assert sent.status == 204  # the progress script opens the page itself
    assert sent.headers["X-Sekisho-Location"] == f"/documents/{doc}?uploaded=1"
    assert (await Document.get(id=doc)).current_version == 2


async def test_downgrade_and_destroy_need_an_officer_and_checks(portal: Portal) -> None:
    await person("alice", level="SECRET")
    await person("olivia", level="SECRET", roles=OFFICER)
    await sign_in(portal.client, "alice")
    doc = await upload(portal.client, "Depot plan", "SECRET")
    page = await (await portal.client.get(f"/documents/{doc}")).text()
    assert "Upload a new version" in page and "Downgrade" not in page
    assert (await portal.client.get(f"/documents/{doc}/downgrade")).status == 403

    await switch(portal.client, "olivia")
    path = f"/documents/{doc}/downgrade"
    token = await form_token(portal.client, path)
    no_reason = await portal.client.post(
        path, data={"csrf": token, "level": "CONFIDENTIAL", "reason": " "}
    )
    assert no_reason.status == 400 and "needs a reason" in await no_reason.text()
    done = await portal.client.post(
        path,
        data={"csrf": token, "level": "CONFIDENTIAL", "reason": "released"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"].endswith("?downgraded=1")
    assert len(await ledger_entries(portal.app, "document.relabelled")) == 1

    path = f"/documents/{doc}/destroy"
    token = await form_token(portal.client, path)
    wrong = await portal.client.post(path, data={"csrf": token, "confirm": "depot plan"})
    assert wrong.status == 400 and "exactly" in await wrong.text()
    assert not (await Document.get(id=doc)).destroyed
    gone = await portal.client.post(path, data={"csrf": token, "confirm": "Depot plan"})
    assert gone.status == 200 and "crypto-shredded" in await gone.text()
    assert (await Document.get(id=doc)).destroyed
    rows = await AccessEvent.filter(document_id=doc, action="destroy")
    assert [(r.actor, r.outcome) for r in rows] == [("person:olivia", "granted")]


async def test_two_person_rule_in_the_portal(portal: Portal) -> None:
    await person("olivia", level="TOP SECRET", roles=OFFICER)
    await person("oscar", level="TOP SECRET", roles=OFFICER)
    await sign_in(portal.client, "olivia")
    doc = await upload(portal.client, "Kestrel", "TOP SECRET")
    path = f"/documents/{doc}/destroy"
    token = await form_token(portal.client, path)
    asked = await portal.client.post(path, data={"csrf": token, "confirm": doc})
    assert asked.status == 200 and "Waiting for a second officer" in await asked.text()
    [request] = await ApprovalRequest.all()
    listing = await (await portal.client.get("/approvals")).text()
    assert "Yours: waiting for another officer" in listing
    own = await portal.client.post(
        f"/approvals/{request.id}/approve",
        data={"csrf": await form_token(portal.client, "/approvals")},
    )
    assert own.status == 403 and "another officer" in await own.text()

    await switch(portal.client, "oscar")
    home = await (await portal.client.get("/documents")).text()
    assert re.search(r'Approvals <span class="count">1<', home)
    token = await form_token(portal.client, "/approvals")
    decided = await portal.client.post(
        f"/approvals/{request.id}/approve", data={"csrf": token}, allow_redirects=False
    )
    assert decided.status == 303
    assert (await Document.get(id=doc)).destroyed
    assert await DocumentVersion.filter(document_id=doc, destroyed_at__isnull=True).count() == 0
    assert len(await ledger_entries(portal.app, "approval.granted")) == 1


async def test_a_request_above_the_officer_is_answered_as_an_unknown_id(portal: Portal) -> None:
    """An officer not cleared for a request's document gets, for approving or refusing it,
    the page of a request that does not exist (status and bytes), whatever its status, and
    each attempt is one recorded refusal; it used to be told 409 and the status."""
    await person("olivia", level="TOP SECRET", roles=OFFICER)
    await person("oscar", level="TOP SECRET", roles=OFFICER)
    await person("lena", level="SECRET", roles=OFFICER)
    await sign_in(portal.client, "olivia")
    hidden = {}
    for status in ("pending", "refused", "approved"):
        doc = await upload(portal.client, f"Kestrel {status}", "TOP SECRET")
        path = f"/documents/{doc}/destroy"
        token = await form_token(portal.client, path)
        asked = await portal.client.post(path, data={"csrf": token, "confirm": doc})
        assert asked.status == 200
        hidden[status] = (doc, (await ApprovalRequest.get(document_id=doc)).id)
    await switch(portal.client, "oscar")
    for status, verb in (("refused", "refuse"), ("approved", "approve")):
        token = await form_token(portal.client, "/approvals")
        decided = await portal.client.post(
            f"/approvals/{hidden[status][1]}/{verb}", data={"csrf": token}, allow_redirects=False
        )
        assert decided.status == 303

    await switch(portal.client, "lena")
    token = await form_token(portal.client, "/approvals")

    async def answers(request_id: str) -> list[tuple[int, str]]:
        found = []
        for verb in ("approve", "refuse"):
            response = await portal.client.post(
                f"/approvals/{request_id}/{verb}", data={"csrf": token}, allow_redirects=False
            )
            found.append((response.status, await response.text()))
        return found

    unknown = await answers("00000000-0000-4000-8000-000000000000")
    assert [status for status, _ in unknown] == [404, 404]
    assert "no such approval request" in unknown[0][1]
    for status in ("refused", "approved", "pending"):  # settled ones used to answer 409
        doc, request_id = hidden[status]
        before = await AccessEvent.all().count()
        assert await answers(request_id) == unknown, status
        rows = await AccessEvent.filter(actor="person:lena", document_id=doc)
        assert sorted((r.action, r.outcome, r.reason) for r in rows) == [
            ("approve", "denied", "level"),
            ("refuse", "denied", "level"),
        ], status
        assert await AccessEvent.all().count() == before + 2, status
    statuses = [(await ApprovalRequest.get(id=rid)).status for _, rid in hidden.values()]
    assert statuses == ["pending", "refused", "approved"]


async def test_a_two_person_request_from_the_portal_is_one_entry(portal: Portal) -> None:
    """Asking for a downgrade or destruction the rule covers records the request's one
    decision; the form shown with "waiting for a second officer" records nothing more
    (it used to add a metadata view)."""
    await person("olivia", level="TOP SECRET", roles=OFFICER)
    await sign_in(portal.client, "olivia")
    for action, fields in (
        ("downgrade", {"level": "SECRET", "reason": "operation over"}),
        ("destroy", {}),
    ):
        doc = await upload(portal.client, f"Kestrel {action}", "TOP SECRET")
        path = f"/documents/{doc}/{action}"
        token = await form_token(portal.client, path)
        before = await AccessEvent.all().count()
        fields = {"confirm": doc} if action == "destroy" else fields
        asked = await portal.client.post(path, data={"csrf": token, **fields})
        assert asked.status == 200 and "Waiting for a second officer" in await asked.text()
        rows = await AccessEvent.filter(document_id=doc).order_by("-id").limit(1)
        assert [(r.action, r.outcome) for r in rows] == [(f"request_{action}", "granted")]
        assert await AccessEvent.all().count() == before + 1, action
