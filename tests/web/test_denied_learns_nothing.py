"""A person refused a document learns nothing their view of a never-existing id would not tell.

Pages and reads (GET), and every request that acts on a document (the file check
from the portal and the API, new versions, downgrade, destruction, anchor and
opening look-ups), are compared; so is the person's own history after them.

Each view a refused person can reach is fetched for a hidden document and for a random
id; once ids (and times and ledger positions, which differ for any two requests) are
masked, the bytes must be identical (docs/security.md, "The denied person learns nothing").
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import FormData

from gateway.app_keys import LEDGER
from gateway.auth.tokens import issue_token
from tests.web.conftest import Portal, form_token, person, sign_in
from tests.web.test_portal_pages import upload

_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?Z?")
_CELL_NUMBER = re.compile(r'<td class="num"( data-label="[^"]*")?>\d+</td>')


def _masked(row: str) -> str:
    row = _CELL_NUMBER.sub('<td class="num">N</td>', row)
    return _ID.sub("ID", _TIME.sub("TIME", row))


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row.strip() for row in body.split("<tr>")[1:]]


async def test_own_history_shows_a_hidden_document_like_a_missing_one(portal: Portal) -> None:
    await person("holder", level="SECRET")
    await person("reader", level="RESTRICTED")
    await sign_in(portal.client, "holder")
    hidden = await upload(portal.client, "Nightjar", "SECRET")
    await portal.client.get("/logout")
    portal.client.session.cookie_jar.clear()
    await sign_in(portal.client, "reader")
    missing = str(uuid.uuid4())
    assert (await portal.client.get(f"/documents/{hidden}")).status == 404
    assert (await portal.client.get(f"/documents/{missing}")).status == 404

    history = await (await portal.client.get("/me/history")).text()
    rows = [row for row in _rows(history) if hidden[:8] in row or missing[:8] in row]
    assert len(rows) == 2, history
    assert _masked(rows[0]) == _masked(rows[1])
    for leak in ("level", "compartments", "releasab", "not_found<", " v1"):
        assert leak not in rows[0] + rows[1]
    assert "not found or not permitted" in rows[0]


_CSRF = re.compile(r'name="csrf" value="[^"]*"')
PAGES = ("", "/download", "/receipt", "/check", "?version=1", "/download?version=1")


async def test_portal_pages_show_a_hidden_document_like_a_missing_one(portal: Portal) -> None:
    await person("holder", level="SECRET")
    await person("reader", level="RESTRICTED")
    await sign_in(portal.client, "holder")
    hidden = await upload(portal.client, "Nightjar", "SECRET")
    portal.client.session.cookie_jar.clear()
    await sign_in(portal.client, "reader")
    missing = str(uuid.uuid4())

    async def seen(doc_id: str, suffix: str) -> tuple[int, str, str | None]:
        response = await portal.client.get(f"/documents/{doc_id}{suffix}")
        text = _CSRF.sub("CSRF", (await response.text()).replace(doc_id, "ID"))
        return response.status, text, response.headers.get("Content-Type")

    for suffix in PAGES:
        assert await seen(hidden, suffix) == await seen(missing, suffix), suffix


@dataclass(frozen=True)
class Post:
    """A request a denied person can send about a document id (or a ledger index)."""

    method: str
    path: str  # {id} is the document id, {index} its registration entry's index
    body: Callable[[str], dict[str, Any]] = lambda _csrf: {}
    portal: bool = False  # with the session (and its CSRF token) instead of a bearer token
    recorded: bool = True  # a document decision: the person's history shows it
    roles: tuple[str, ...] = ("reader", "uploader", "officer")  # no role check tells first


def _file(csrf: str = "", **fields: str) -> dict[str, Any]:
    form = FormData()
    if csrf:
        form.add_field("csrf", csrf)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", b"nightjar mission plan", filename="plan.txt")
    return {"data": form}


POSTS = {
    "portal check": Post("POST", "/documents/{id}/check", lambda c: _file(c), portal=True),
    "portal check v1": Post(
        "POST", "/documents/{id}/check", lambda c: _file(c, version="1"), portal=True
    ),
    "api check": Post("POST", "/api/v1/documents/{id}/check", lambda _: _file()),
    "api check v1": Post("POST", "/api/v1/documents/{id}/check?version=1", lambda _: _file()),
    "api new version": Post(
        "POST", "/api/v1/documents/{id}/versions", lambda _: _file(label="SECRET")
    ),
    "api new version raw": Post(
        "POST", "/api/v1/documents/{id}/versions?filename=x", lambda _: {"data": b"v2"}
    ),
    "api downgrade": Post(
        "POST",
        "/api/v1/documents/{id}/downgrade",
        lambda _: {"json": {"label": "CONFIDENTIAL", "reason": "probe"}},
    ),
    "api destroy": Post("DELETE", "/api/v1/documents/{id}"),
    "api anchor": Post("GET", "/api/v1/documents/{id}/anchor"),
    "api anchor v1": Post("GET", "/api/v1/documents/{id}/anchor?version=1"),
    "api opening": Post(  # officers open every entry by design: a plain reader here
        "GET", "/api/v1/ledger/entries/{index}/opening", recorded=False, roles=("reader",)
    ),
}


@pytest.mark.parametrize("name", list(POSTS))
async def test_requests_about_a_hidden_document_look_like_a_missing_one(
    portal: Portal, name: str
) -> None:
    post = POSTS[name]
    await person("holder", level="SECRET", roles=("reader", "uploader", "officer"))
    reader = await person("reader", level="CONFIDENTIAL", roles=post.roles)
    await sign_in(portal.client, "holder")
    hidden = await upload(portal.client, "Nightjar", "SECRET")
    portal.client.session.cookie_jar.clear()
    await sign_in(portal.client, "reader")
    csrf = await form_token(portal.client, "/me/password")
    bearer = {"Authorization": f"Bearer {await issue_token(principal=reader)}"}
    missing = str(uuid.uuid4())
    latest = await portal.app[LEDGER].latest()
    indexes = {hidden: await _registration_index(portal, hidden), missing: latest.size + 1000}

    async def seen(doc_id: str) -> tuple[int, str, str | None]:
        path = post.path.replace("{id}", doc_id).replace("{index}", str(indexes[doc_id]))
        headers = {} if post.portal else bearer
        response = await portal.client.request(
            post.method, path, headers=headers, **post.body(csrf)
        )
        text = _CSRF.sub("CSRF", (await response.text()).replace(doc_id, "ID"))
        if "{index}" in post.path:
            text = text.replace(str(indexes[doc_id]), "INDEX")
        return response.status, text, response.headers.get("Content-Type")

    for _ in range(2):  # the second time too (nothing learnt from the first is cached)
        answer = await seen(hidden)
        assert answer == await seen(missing)
        assert answer[0] == 404

    history = await (await portal.client.get("/me/history")).text()
    rows = [row for row in _rows(history) if hidden[:8] in row or missing[:8] in row]
    if not post.recorded:
        assert rows == []
        return
    assert len(rows) == 4, history  # one row per request: each id asked twice
    assert len({_masked(row) for row in rows}) == 1, [_masked(row) for row in rows]
    for leak in ("level", "compartments", "releasab", "not_found<", " v1"):
        assert leak not in "".join(rows)


async def _registration_index(portal: Portal, doc_id: str) -> int:
    ledger = portal.app[LEDGER]
    latest = await ledger.latest()
    for index, entry in enumerate(await ledger.opened_entries(0, latest.size)):
        if entry.get("type") == "document.registered" and entry.get("document") == doc_id:
            return index
    raise AssertionError("no registration entry")
