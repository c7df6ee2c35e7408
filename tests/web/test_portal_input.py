"""Portal input classes of issue #14: integer parameters and bodies before sign-in.

Unicode digits pass ``str.isdigit()`` and fail ``int()``; every integer the
portal reads goes through the shared parser and is a 400 page, never a 500.
A form to a public page is refused from its declared length before any of it
is read (the CSRF check used to read the whole form, up to 1 GiB).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import FormData

from tests.web.conftest import Portal, form_token, person, sign_in

SUPERSCRIPT_TWO = "\u00b2"


@pytest.mark.parametrize(
    "path",
    [
        f"/documents?page={SUPERSCRIPT_TWO}",
        "/documents?page=" + "9" * 5000,
        f"/me/history?cursor={SUPERSCRIPT_TWO}",
        f"/officer/trail?cursor={SUPERSCRIPT_TWO}",
    ],
)
async def test_unicode_digits_in_portal_parameters_are_a_400_page(
    portal: Portal, path: str
) -> None:
    await person("reader1", roles=("reader", "officer"))
    assert (await sign_in(portal.client, "reader1")).status == 303
    response = await portal.client.get(path)
    assert response.status == 400, await response.text()
    assert "text/html" in response.headers["Content-Type"]


async def test_the_check_form_version_takes_ascii_digits_only(portal: Portal) -> None:
    await person("checker")
    assert (await sign_in(portal.client, "checker")).status == 303
    token = await form_token(portal.client, "/upload")
    document = "00000000-0000-4000-8000-000000000000"
    form = {"csrf": token, "version": SUPERSCRIPT_TWO}
    data = FormData()
    for name, value in form.items():
        data.add_field(name, value)
    data.add_field("file", b"abc", filename="a.txt")
    response = await portal.client.post(f"/documents/{document}/check", data=data)
    assert response.status == 400, await response.text()


async def test_a_large_form_to_the_sign_in_page_is_refused_unread(portal: Portal) -> None:
    form = "csrf=x&username=a&password=" + "p" * (200 * 1024)
    response = await portal.client.post(
        "/login",
        data=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert response.status == 413


async def test_a_streamed_form_without_a_length_is_capped_while_it_arrives(
    portal: Portal,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"csrf=x&username=a&password="
        for _ in range(40):
            yield b"p" * 4096

    response = await portal.client.post(
        "/login",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert response.status == 413


async def test_an_upload_form_cannot_hide_a_large_body_in_its_text_fields(portal: Portal) -> None:
    await person("uploader1")
    assert (await sign_in(portal.client, "uploader1")).status == 303
    data = FormData()
    data.add_field("csrf", await form_token(portal.client, "/upload"))
    data.add_field("level", "SECRET")
    for _ in range(20):  # each field within its own limit, together more than 64 KiB
        data.add_field("compartments", "C" * 4000)
    data.add_field("file", b"abc", filename="a.txt")
    response = await portal.client.post("/upload", data=data)
    assert response.status == 413, await response.text()
