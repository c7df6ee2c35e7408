"""The portal shows an old version as itself: its own label and banner, nothing newer.

A reader cleared for version 1 of a document whose version 2 is labelled above
them must not learn from the document page (banner, label, "current version",
download names) that version 2 exists (issue #14, "Old versions").
"""

from __future__ import annotations

from gateway.auth.tokens import issue_token
from tests.web.conftest import Portal, person, sign_in


async def test_the_document_page_of_an_old_version_shows_only_that_version(
    portal: Portal,
) -> None:
    client = portal.client
    alice = await person("alice", level="SECRET", compartments=("NIGHTJAR",))
    bearer = {"Authorization": f"Bearer {await issue_token(principal=alice)}"}
    first = await client.post(
        "/api/v1/documents?title=Manifest&label=CONFIDENTIAL&filename=v1.txt",
        data=b"version one",
        headers=bearer,
    )
    doc = (await first.json())["id"]
    second = await client.post(
        f"/api/v1/documents/{doc}/versions?label=SECRET//NIGHTJAR&filename=v2-nightjar.txt",
        data=b"version two",
        headers=bearer,
    )
    assert second.status == 201, await second.text()

    await person("rob", level="CONFIDENTIAL", roles=("reader",))
    assert (await sign_in(client, "rob")).status == 303
    for path in (f"/documents/{doc}?version=1", f"/documents/{doc}"):
        page = await client.get(path)
        assert page.status == 200, path
        html = await page.text()
        assert 'aria-label="Highest classification on this page: CONFIDENTIAL"' in html, path
        assert "SECRET" not in html and "NIGHTJAR" not in html.upper(), path
        assert "current version is" not in html and "cleared for is" not in html, path
    download = await client.get(f"/documents/{doc}/download")
    assert await download.read() == b"version one"
    assert "v1.txt" in download.headers["Content-Disposition"]
