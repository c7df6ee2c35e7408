"""Nationalities and REL TO typed into portal forms are ISO 3166-1 alpha-3 codes (issue #14)."""

from __future__ import annotations

import html

from gateway.auth.principals import Principal
from tests.web.conftest import Portal, form_token, person, sign_in


async def test_the_admin_forms_refuse_a_nationality_that_is_no_iso_code(portal: Portal) -> None:
    await person("root", level="TOP SECRET", roles=("admin", "reader"))
    await person("carol", level="SECRET", nationality="JPN")
    client = portal.client
    await sign_in(client, "root")
    token = await form_token(client, "/admin/people")
    for code, message in (("XXX", "'XXX' is not an ISO 3166-1 alpha-3 code"), ("GER", "is DEU")):
        created = await client.post(
            "/admin/people",
            data={"csrf": token, "username": "dora", "level": "SECRET", "nationality": code},
        )
        assert created.status == 400, code
        assert message in html.unescape(await created.text()), code
        changed = await client.post(
            "/admin/people/carol",
            data={"csrf": token, "level": "SECRET", "nationality": code, "roles": "reader"},
            allow_redirects=False,
        )
        assert changed.status == 400, code
        assert message in html.unescape(await changed.text()), code
    assert not await Principal.exists(username="dora")
    assert (await Principal.get(username="carol")).nationality == "JPN"


async def test_the_upload_form_expands_coalitions_and_refuses_unknown_codes(
    portal: Portal,
) -> None:
    await person("alice", level="SECRET", nationality="GBR")
    client = portal.client
    await sign_in(client, "alice")
    token = await form_token(client, "/upload")

    async def upload(rel_to: str) -> tuple[int, str]:
        from aiohttp import FormData

        form = FormData()
        for name, value in (("csrf", token), ("title", "T"), ("level", "SECRET")):
            form.add_field(name, value)
        form.add_field("rel_to", rel_to)
        form.add_field("file", b"x", filename="x.txt")
        response = await client.post("/upload", data=form, allow_redirects=False)
        return response.status, html.unescape(await response.text())

    status, text = await upload("XXX")
    assert status == 400 and "'XXX' is not an ISO 3166-1 alpha-3 code" in text
    status, _ = await upload("FVEY")
    assert status == 303
    page = await client.get("/documents")
    assert "REL TO AUS, CAN, GBR, NZL, USA" in await page.text()
