"""A person refused a document learns nothing their view of a never-existing id would not tell.

Each view a refused person can reach is fetched for a hidden document and for a random
id; once ids (and times and ledger positions, which differ for any two requests) are
masked, the bytes must be identical (docs/security.md, "The denied person learns nothing").
"""

from __future__ import annotations

import re
import uuid

from tests.web.conftest import Portal, person, sign_in
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
