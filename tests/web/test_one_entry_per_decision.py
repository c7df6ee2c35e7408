"""One decision, one ledger entry, one trail row (#13: "one entry per decision").

Every grant and refusal path a person reaches, through the API and through the
portal, is taken once; each must add exactly one ``document.accessed`` entry and
one trail row (sign-in: one ``auth.sign_in`` entry and one attempt row). A refused
new version used to write two: the read check's grant, then the label's refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse, FormData

from gateway.auth.models import SignInAttempt
from gateway.auth.tokens import issue_token
from gateway.documents.models import AccessEvent
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
}


@pytest.fixture
async def world(portal: Portal) -> World:
    people = {
        "uma": await person("uma", level="SECRET"),  # uploader
        "rita": await person("rita", level="CONFIDENTIAL", roles=("reader",)),
        "olga": await person("olga", level="TOP SECRET", roles=("reader", "officer")),
    }
    bearer = {
        name: {"Authorization": f"Bearer {await issue_token(principal=who)}"}
        for name, who in people.items()
    }
    world = World(portal, bearer, {})
    for name, label in (("open", "SECRET"), ("low", "CONFIDENTIAL"), ("doomed", "CONFIDENTIAL")):
        made = await _api(
            world, "uma", "POST", "/api/v1/documents", data=_file_form(title=name, label=label)
        )
        assert made.status == 201, await made.text()
        world.docs[name] = (await made.json())["id"]
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
