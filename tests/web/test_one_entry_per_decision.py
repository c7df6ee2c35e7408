"""One decision, one ledger entry, one trail row (#13: "one entry per decision").

Every grant and refusal path a person reaches, through the API and through the
portal, is taken once; each must add exactly one ``document.accessed`` entry and
one trail row (sign-in: one ``auth.sign_in`` entry and one attempt row). A refused
new version used to write two: the read check's grant, then the label's refusal.
The portal's change pages (new version, downgrade, destroy, approvals) used to
refuse a missing role with no entry at all, its new version to write the read's
grant besides the writer's decision, and a form shown again after a recorded
decision a second, "metadata" entry. The approvals lists (API and portal) and the
portal's upload form refused a person without the role with no entry (a list shown
wrote none either); approving a downgrade wrote two (the approval's grant and the
writer's ``downgrade``), and a refused new label, a settled request or a stale one were
told after a recorded grant, or with no entry at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse, FormData

from gateway.auth.models import SignInAttempt
from gateway.auth.tokens import issue_token
from gateway.documents.models import AccessEvent, ApprovalRequest
from gateway.signing.clients import ClientSpec
from tests.gateway.app_fixtures import operator_managers
from tests.web.conftest import Portal, form_token, ledger_entries, person, sign_in
from tests.web.test_portal_pages import upload_form

CONTENT = b"convoy leaves at dawn\n"
MISSING = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    """The people (API headers and portal sessions) and documents the paths act on."""

    portal: Portal
    bearer: dict[str, dict[str, str]]
    docs: dict[str, str]
    approvals: dict[str, str]


def _file_form(content: bytes = CONTENT, **fields: str) -> FormData:
    form = FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", content, filename="f.txt", content_type="text/plain")
    return form


async def _api(world: World, who: str, method: str, path: str, **kw: Any) -> ClientResponse:
    response = await world.portal.client.request(method, path, headers=world.bearer[who], **kw)
    await response.read()
    return response


async def _as(world: World, who: str) -> str:
    """Sign ``who`` in on the portal (not counted) and return a CSRF token."""
    client = world.portal.client
    client.session.cookie_jar.clear()
    assert (await sign_in(client, who)).status == 303
    return await form_token(client, "/me/password")


async def _portal_upload(world: World, who: str, level: str) -> ClientResponse:
    token = await _as(world, who)
    data = upload_form(token, "Portal upload", level, CONTENT)
    return await world.portal.client.post("/upload", data=data, allow_redirects=False)


async def _portal_get(world: World, who: str, path: str) -> ClientResponse:
    await _as(world, who)
    response = await world.portal.client.get(path, allow_redirects=False)
    await response.read()
    return response


async def _portal_post(world: World, who: str, path: str, **fields: str) -> ClientResponse:
    token = await _as(world, who)
    response = await world.portal.client.post(
        path, data={"csrf": token, **fields}, allow_redirects=False
    )
    await response.read()
    return response


async def _portal_new_version(world: World, who: str, doc: str, level: str) -> ClientResponse:
    token = await _as(world, who)
    response = await world.portal.client.post(
        f"/documents/{doc}/new-version",
        data=_file_form(csrf=token, level=level),
        allow_redirects=False,
    )
    await response.read()
    return response


async def _portal_check(world: World, who: str, doc: str) -> ClientResponse:
    token = await _as(world, who)
    response = await world.portal.client.post(
        f"/documents/{doc}/check", data=_file_form(csrf=token)
    )
    await response.read()
    return response


Action = Callable[[World], Awaitable[ClientResponse]]
DOC_ACTIONS: dict[str, tuple[Action, int]] = {
    "api upload granted": (
        lambda w: _api(
            w, "uma", "POST", "/api/v1/documents", data=_file_form(title="T", label="SECRET")
        ),
        201,
    ),
    "api upload refused": (
        lambda w: _api(
            w, "rita", "POST", "/api/v1/documents", data=_file_form(title="T", label="SECRET")
        ),
        403,
    ),
    "api new version granted": (
        lambda w: _api(w, "uma", "POST", f"/api/v1/documents/{w.docs['open']}/versions", data=b"2"),
        201,
    ),
    "api new version refused (label)": (
        lambda w: _api(
            w,
            "uma",
            "POST",
            f"/api/v1/documents/{w.docs['open']}/versions",
            data=_file_form(label="SECRET//NIGHTJAR"),
        ),
        403,
    ),
    "api new version refused (role)": (
        lambda w: _api(w, "rita", "POST", f"/api/v1/documents/{w.docs['low']}/versions", data=b"2"),
        403,
    ),
    "api new version of a hidden document, without the uploader role": (
        lambda w: _api(
            w, "rita", "POST", f"/api/v1/documents/{w.docs['open']}/versions", data=b"2"
        ),
        403,  # the role is checked first, the same for every id
    ),
    "api downgrade granted": (
        lambda w: _api(
            w,
            "olga",
            "POST",
            f"/api/v1/documents/{w.docs['open']}/downgrade",
            json={"label": "CONFIDENTIAL", "reason": "declassified"},
        ),
        201,
    ),
    "api downgrade refused (role)": (
        lambda w: _api(
            w,
            "uma",
            "POST",
            f"/api/v1/documents/{w.docs['low']}/downgrade",
            json={"label": "UNCLASSIFIED", "reason": "no"},
        ),
        403,
    ),
    "api destroy refused (role)": (
        lambda w: _api(w, "uma", "DELETE", f"/api/v1/documents/{w.docs['low']}"),
        403,
    ),
    "api destroy granted": (
        lambda w: _api(w, "olga", "DELETE", f"/api/v1/documents/{w.docs['doomed']}"),
        200,
    ),
    "api download granted": (
        lambda w: _api(w, "uma", "GET", f"/api/v1/documents/{w.docs['low']}/content"),
        200,
    ),
    "api download refused": (
        lambda w: _api(w, "rita", "GET", f"/api/v1/documents/{w.docs['open']}/content"),
        404,
    ),
    "api metadata granted": (
        lambda w: _api(w, "uma", "GET", f"/api/v1/documents/{w.docs['low']}"),
        200,
    ),
    "api metadata refused": (
        lambda w: _api(w, "rita", "GET", f"/api/v1/documents/{MISSING}"),
        404,
    ),
    "api check granted": (
        lambda w: _api(
            w, "uma", "POST", f"/api/v1/documents/{w.docs['low']}/check", data=_file_form()
        ),
        200,
    ),
    "api check refused": (
        lambda w: _api(
            w, "rita", "POST", f"/api/v1/documents/{w.docs['open']}/check", data=_file_form()
        ),
        404,
    ),
    "portal upload granted": (lambda w: _portal_upload(w, "uma", "SECRET"), 303),
    "portal upload refused (label)": (lambda w: _portal_upload(w, "uma", "TOP SECRET"), 403),
    "portal upload refused (role)": (lambda w: _portal_upload(w, "rita", "CONFIDENTIAL"), 403),
    "portal download granted": (
        lambda w: _portal_get(w, "uma", f"/documents/{w.docs['low']}/download"),
        200,
    ),
    "portal download refused": (
        lambda w: _portal_get(w, "rita", f"/documents/{w.docs['open']}/download"),
        404,
    ),
    "portal metadata granted": (
        lambda w: _portal_get(w, "uma", f"/documents/{w.docs['low']}"),
        200,
    ),
    "portal metadata refused": (
        lambda w: _portal_get(w, "rita", f"/documents/{w.docs['open']}"),
        404,
    ),
    "portal check granted": (lambda w: _portal_check(w, "uma", w.docs["low"]), 200),
    "portal check refused": (lambda w: _portal_check(w, "rita", w.docs["open"]), 404),
    "portal new version form refused (role)": (
        lambda w: _portal_get(w, "rita", f"/documents/{w.docs['low']}/new-version"),
        403,
    ),
    "portal new version granted": (
        lambda w: _portal_new_version(w, "uma", w.docs["open"], "SECRET"),
        303,
    ),
    "portal new version refused (label)": (
        lambda w: _portal_new_version(w, "uma", w.docs["open"], "TOP SECRET"),
        403,
    ),
    "portal new version refused (role)": (
        lambda w: _portal_new_version(w, "rita", w.docs["low"], "CONFIDENTIAL"),
        403,
    ),
    "portal new version of a hidden document, without the uploader role": (
        lambda w: _portal_new_version(w, "rita", w.docs["open"], "SECRET"),
        403,  # the role is checked first, the same for every id
    ),
    "portal new version of a hidden document": (
        lambda w: _portal_new_version(w, "lena", w.docs["open"], "SECRET"),
        404,
    ),
    "portal downgrade form refused (role)": (
        lambda w: _portal_get(w, "uma", f"/documents/{w.docs['low']}/downgrade"),
        403,
    ),
    "portal downgrade granted": (
        lambda w: _portal_post(
            w,
            "olga",
            f"/documents/{w.docs['open']}/downgrade",
            level="CONFIDENTIAL",
            reason="declassified",
        ),
        303,
    ),
    "portal downgrade refused (role)": (
        lambda w: _portal_post(
            w, "uma", f"/documents/{w.docs['low']}/downgrade", level="UNCLASSIFIED", reason="no"
        ),
        403,
    ),
    "portal downgrade of a hidden document": (
        lambda w: _portal_post(
            w, "lena", f"/documents/{w.docs['open']}/downgrade", level="UNCLASSIFIED", reason="x"
        ),
        404,
    ),
    "portal destroy form refused (role)": (
        lambda w: _portal_get(w, "uma", f"/documents/{w.docs['low']}/destroy"),
        403,
    ),
    "portal destroy refused (role)": (
        lambda w: _portal_post(
            w, "uma", f"/documents/{w.docs['low']}/destroy", confirm=w.docs["low"]
        ),
        403,
    ),
    "portal destroy of a hidden document": (
        lambda w: _portal_post(
            w, "lena", f"/documents/{w.docs['open']}/destroy", confirm=w.docs["open"]
        ),
        404,
    ),
    "portal destroy granted": (
        lambda w: _portal_post(
            w, "olga", f"/documents/{w.docs['doomed']}/destroy", confirm=w.docs["doomed"]
        ),
        200,
    ),
    "portal approve refused (role)": (
        lambda w: _portal_post(w, "uma", f"/approvals/{w.approvals['open']}/approve"),
        403,
    ),
    "portal approve of a hidden request": (
        lambda w: _portal_post(w, "lena", f"/approvals/{w.approvals['open']}/approve"),
        404,
    ),
    "portal refuse of an unknown request": (
        lambda w: _portal_post(w, "lena", f"/approvals/{MISSING}/refuse"),
        404,
    ),
    "portal approve refused (own request)": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['mine']}/approve"),
        403,
    ),
    "portal approve granted": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['doomed']}/approve"),
        303,
    ),
    "portal refuse granted": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['open']}/refuse"),
        303,
    ),
    "api approval view granted": (
        lambda w: _api(w, "olga", "GET", f"/api/v1/approvals/{w.approvals['open']}"),
        200,
    ),
    "api approval view of a hidden request": (
        lambda w: _api(w, "lena", "GET", f"/api/v1/approvals/{w.approvals['open']}"),
        404,
    ),
    "api approve refused (role)": (
        lambda w: _api(w, "uma", "POST", f"/api/v1/approvals/{w.approvals['open']}/approve"),
        403,
    ),
    "api approve of a hidden request": (
        lambda w: _api(w, "lena", "POST", f"/api/v1/approvals/{w.approvals['open']}/approve"),
        404,
    ),
    "api refuse of an unknown request": (
        lambda w: _api(w, "lena", "POST", f"/api/v1/approvals/{MISSING}/refuse"),
        404,
    ),
    "api approve refused (own request)": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['mine']}/approve"),
        403,
    ),
    "api approve granted": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['doomed']}/approve"),
        200,
    ),
    "api refuse granted": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['open']}/refuse"),
        200,
    ),
    "api approvals list granted": (lambda w: _api(w, "olga", "GET", "/api/v1/approvals"), 200),
    "api approvals list refused (role)": (
        lambda w: _api(w, "uma", "GET", "/api/v1/approvals"),
        403,
    ),
    "portal approvals list granted": (lambda w: _portal_get(w, "olga", "/approvals"), 200),
    "portal approvals list refused (role)": (lambda w: _portal_get(w, "uma", "/approvals"), 403),
    "portal upload form refused (role)": (lambda w: _portal_get(w, "rita", "/upload"), 403),
    "api approve granted (downgrade)": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['downgrade']}/approve"),
        200,
    ),
    "portal approve granted (downgrade)": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['downgrade']}/approve"),
        303,
    ),
    "api approve refused (new label outside the officer's clearance)": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['beyond']}/approve"),
        403,
    ),
    "portal approve refused (new label outside the officer's clearance)": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['beyond']}/approve"),
        403,
    ),
    "api approve of a settled request": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['settled']}/approve"),
        409,
    ),
    "portal refuse of a settled request": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['settled']}/refuse"),
        409,
    ),
    "api approve of a stale request": (
        lambda w: _api(w, "olga", "POST", f"/api/v1/approvals/{w.approvals['stale']}/approve"),
        409,
    ),
    "portal refuse of a stale request": (
        lambda w: _portal_post(w, "olga", f"/approvals/{w.approvals['stale']}/refuse"),
        409,
    ),
}


@pytest.fixture
async def world(portal: Portal) -> World:
    people = {
        "uma": await person("uma", level="SECRET"),  # uploader
        "rita": await person("rita", level="CONFIDENTIAL", roles=("reader",)),
        "olga": await person("olga", level="TOP SECRET", roles=("reader", "officer")),
        # an officer and uploader not cleared for "open"
        "lena": await person("lena", level="CONFIDENTIAL", roles=("reader", "uploader", "officer")),
    }
    bearer = {
        name: {"Authorization": f"Bearer {await issue_token(principal=who)}"}
        for name, who in people.items()
    }
    world = World(portal, bearer, {}, {})
    for name, label in (
        ("open", "SECRET"),
        ("low", "CONFIDENTIAL"),
        ("doomed", "CONFIDENTIAL"),
        ("moved", "CONFIDENTIAL"),
    ):
        made = await _api(
            world, "uma", "POST", "/api/v1/documents", data=_file_form(title=name, label=label)
        )
        assert made.status == 201, await made.text()
        world.docs[name] = (await made.json())["id"]
    # two-person requests, as if the rule covered these documents: to destroy, to
    # downgrade (to a label outside olga's clearance: a compartment she does not hold),
    # one refused already, and one made before the document's newer version
    for name, doc, by, action, new_label, status in (
        ("open", "open", "uma", "destroy", "", "pending"),
        ("doomed", "doomed", "uma", "destroy", "", "pending"),
        ("mine", "low", "olga", "destroy", "", "pending"),
        ("downgrade", "open", "uma", "downgrade", "CONFIDENTIAL", "pending"),
        ("beyond", "low", "uma", "downgrade", "UNCLASSIFIED//NIGHTJAR", "pending"),
        ("settled", "doomed", "uma", "downgrade", "UNCLASSIFIED", "refused"),
        ("stale", "moved", "uma", "destroy", "", "pending"),
    ):
        now = datetime.now(UTC)
        row = await ApprovalRequest.create(
            id=str(uuid.uuid4()),
            document_id=world.docs[doc],
            version=1,
            action=action,
            new_label=new_label,
            reason="declassified" if action == "downgrade" else "",
            requested_by=f"person:{by}",
            requested_at=now,
            expires_at=now + timedelta(hours=1),
            status=status,
        )
        world.approvals[name] = row.id
    newer = await _api(
        world, "uma", "POST", f"/api/v1/documents/{world.docs['moved']}/versions", data=b"2"
    )
    assert newer.status == 201, await newer.text()
    return world


async def _counts(portal: Portal) -> tuple[int, int]:
    entries = await ledger_entries(portal.app, "document.accessed")
    return len(entries), await AccessEvent.all().count()


@pytest.mark.parametrize("name", list(DOC_ACTIONS))
async def test_each_document_decision_is_one_entry_and_one_trail_row(
    world: World, name: str
) -> None:
    action, status = DOC_ACTIONS[name]
    before = await _counts(world.portal)
    response = await action(world)
    assert response.status == status, name
    assert await _counts(world.portal) == (before[0] + 1, before[1] + 1), name
    newest = await AccessEvent.all().order_by("-id").first()
    assert newest is not None
    assert newest.outcome == ("granted" if status < 400 else "denied"), name


async def test_each_sign_in_is_one_entry_and_one_attempt_row(portal: Portal) -> None:
    await person("sam", level="CONFIDENTIAL", roles=("reader",))
    for password, status in (("a wrong password of some length", 401), (None, 303)):
        entries = len(await ledger_entries(portal.app, "auth.sign_in"))
        rows = await SignInAttempt.all().count()
        portal.client.session.cookie_jar.clear()
        response = await (
            sign_in(portal.client, "sam", password) if password else sign_in(portal.client, "sam")
        )
        assert response.status == status
        assert len(await ledger_entries(portal.app, "auth.sign_in")) == entries + 1
        assert await SignInAttempt.all().count() == rows + 1


async def test_an_upload_refused_as_bad_input_records_no_grant(world: World) -> None:
    """No title: 400 and nothing recorded (no grant for an id that will never exist);
    the same request by someone without the right is still one refusal."""
    before = await _counts(world.portal)
    untitled = _file_form(label="SECRET")
    response = await _api(world, "uma", "POST", "/api/v1/documents", data=untitled)
    assert response.status == 400
    assert await _counts(world.portal) == before
    untitled = _file_form(label="SECRET")
    response = await _api(world, "rita", "POST", "/api/v1/documents", data=untitled)
    assert response.status == 403
    assert await _counts(world.portal) == (before[0] + 1, before[1] + 1)


async def test_api_clients_are_refused_documents_and_approvals_alike(
    world: World, portal: Portal
) -> None:
    """An API client has no document access at all: the approvals API refuses it as the
    documents API does, before any request or document is looked up, and neither records
    a document decision (a guard: it held before)."""
    _, clients = operator_managers(portal.app, portal.settings)
    spec = ClientSpec(scopes=("anchor",), keys=(), rate_per_minute=0)
    _, token = await clients.add("machine", spec)
    world.bearer["machine"] = {"Authorization": f"Bearer {token}"}
    before = await _counts(world.portal)
    for method, path in (
        ("GET", "/api/v1/documents"),
        ("GET", f"/api/v1/documents/{world.docs['low']}"),
        ("GET", "/api/v1/approvals"),
        ("GET", f"/api/v1/approvals/{world.approvals['open']}"),
        ("POST", f"/api/v1/approvals/{world.approvals['open']}/approve"),
    ):
        response = await _api(world, "machine", method, path)
        assert response.status == 403, path
    assert await _counts(world.portal) == before
    assert (await ApprovalRequest.get(id=world.approvals["open"])).status == "pending"


async def test_an_approved_downgrade_is_the_approvers_one_entry(world: World) -> None:
    """The approval carries the downgrade out: one ``approve_downgrade`` grant naming the
    new version (it used to be that grant and the writer's ``downgrade`` besides)."""
    doc = world.docs["open"]
    response = await _api(
        world, "olga", "POST", f"/api/v1/approvals/{world.approvals['downgrade']}/approve"
    )
    assert response.status == 200, await response.text()
    rows = await AccessEvent.filter(actor="person:olga", document_id=doc)
    assert [(r.action, r.outcome, r.version) for r in rows] == [("approve_downgrade", "granted", 2)]
