"""Portal pages in-process: upload limits, file checks, trail exports, alerts, ledger, admin."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.documents.models import AccessEvent, Document
from tests.web.conftest import PASSWORD, Portal, form_token, ledger_entries, person, sign_in

CONTENT = b"convoy timings\n" * 64


def upload_form(token: str, title: str, level: str, content: bytes, **extra: str) -> FormData:
    """The upload form as a browser sends it: the CSRF token first, the file last."""
    form = FormData()
    form.add_field("csrf", token)
    form.add_field("title", title)
    form.add_field("level", level)
    for name, value in extra.items():
        form.add_field(name, value)
    form.add_field("file", content, filename="convoy.txt", content_type="text/plain")
    return form


async def upload(
    client: TestClient,  # type: ignore[type-arg]
    title: str,
    level: str,
    content: bytes = CONTENT,
    **extra: str,
) -> str:
    """Upload through the portal; returns the new document's id."""
    token = await form_token(client, "/upload")
    response = await client.post(
        "/upload", data=upload_form(token, title, level, content, **extra), allow_redirects=False
    )
    assert response.status == 303, await response.text()
    found = re.match(r"^/documents/([0-9a-f-]{36})\?uploaded=1$", response.headers["Location"])
    assert found is not None
    return found.group(1)


async def test_upload_offers_and_accepts_only_labels_within_the_clearance(portal: Portal) -> None:
    await person("bob", level="CONFIDENTIAL", nationality="JPN")
    await sign_in(portal.client, "bob")
    page = await (await portal.client.get("/upload")).text()
    assert '<option value="CONFIDENTIAL">' in page and '<option value="SECRET">' not in page
    token = await form_token(portal.client, "/upload")
    refused = await portal.client.post(
        "/upload", data=upload_form(token, "Too high", "SECRET", CONTENT)
    )
    assert refused.status == 403
    assert "above your own clearance" in await refused.text()
    assert await Document.all().count() == 0

    document_id = await upload(portal.client, "Depot opening hours", "CONFIDENTIAL", tags="depot")
    page = await (await portal.client.get(f"/documents/{document_id}?uploaded=1")).text()
    assert "Uploaded, encrypted and anchored" in page
    assert 'class="banner lvl-confidential"' in page
    assert await AccessEvent.exists(action="upload", document_id=document_id)


async def test_check_a_file_against_the_anchor(portal: Portal) -> None:
    await person("alice", compartments=("LOGISTICS",))
    await sign_in(portal.client, "alice")
    document_id = await upload(
        portal.client, "Convoy plan", "SECRET", compartments="LOGISTICS", rel_to="fra, gbr"
    )
    page = await (await portal.client.get(f"/documents/{document_id}")).text()
    assert "SECRET//LOGISTICS//REL TO FRA, GBR" in page
    shown = f"<dd>{len(CONTENT)} bytes</dd>"  # said once, not "25 bytes (25 bytes)"
    assert shown in page, page

    async def check(content: bytes) -> str:
        token = await form_token(portal.client, f"/documents/{document_id}")
        form = FormData()
        form.add_field("csrf", token)
        form.add_field("version", "1")
        form.add_field("file", content, filename="mine.txt", content_type="text/plain")
        response = await portal.client.post(f"/documents/{document_id}/check", data=form)
        assert response.status == 200
        return await response.text()

    assert "is byte for byte version 1" in await check(CONTENT)
    mismatch = await check(CONTENT + b"!")
    assert "No match" in mismatch
    assert await AccessEvent.filter(action="check", document_id=document_id).count() == 2

    receipt = await portal.client.get(f"/documents/{document_id}/receipt")
    assert receipt.status == 200 and "attachment" in receipt.headers["Content-Disposition"]
    assert receipt.headers["Cache-Control"] == "no-store"
    download = await portal.client.get(f"/documents/{document_id}/download")
    assert await download.read() == CONTENT
    assert download.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in download.headers["Content-Security-Policy"]


async def test_the_trail_exports_and_the_alerts_of_an_officer(portal: Portal) -> None:
    await person("alice")
    await person("olivia", level="TOP SECRET", roles=("reader", "officer", "uploader"))
    officer, alice = portal.client, portal.client
    await sign_in(officer, "olivia")
    secret_id = await upload(officer, "Operation plan", "TOP SECRET")
    await sign_in(alice, "alice")
    for _ in range(3):
        assert (await alice.get(f"/documents/{secret_id}")).status == 404
    for attempt in range(3):
        await sign_in(alice, "alice", f"not the password {attempt}")
    await sign_in(officer, "olivia")

    trail = await (await officer.get(f"/officer/trail?document={secret_id}")).text()
    assert trail.count('class="badge denied"') == 3
    assert trail.count('class="badge granted"') >= 1
    listed = await officer.get(f"/officer/trail.csv?document={secret_id}&outcome=denied")
    assert listed.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in listed.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await listed.text())))
    assert [r["actor"] for r in rows] == ["person:alice"] * 3
    exported = await officer.get("/officer/trail.json?person=alice&outcome=denied")
    events = json.loads(await exported.text())["events"]
    assert len(events) == 3 and {e["reason"] for e in events} == {"level"}
    bad = await officer.get("/officer/trail?from=yesterday")
    assert bad.status == 400 and "RFC 3339" in await bad.text()

    alerts = await (await officer.get("/officer/alerts")).text()
    assert re.search(r"alice</a></td><td class=\"num\">3</td>", alerts)
    assert re.search(r"<td>alice</td><td class=\"mono\">127.0.0.1</td><td class=\"num\">3", alerts)
    assert 'account <span class="mono">alice</span>' in alerts  # the lock-out
    activity = await (await officer.get("/officer/activity?span=7d")).text()
    assert activity.count('<rect class="denied"') >= 1 and "<svg" in activity


async def test_an_officer_verifies_the_whole_ledger(portal: Portal) -> None:
    await person("olivia", level="TOP SECRET", roles=("reader", "officer"))
    await sign_in(portal.client, "olivia")
    token = await form_token(portal.client, "/officer/ledger")
    started = await portal.client.post(
        "/officer/ledger/verify", data={"csrf": token}, allow_redirects=False
    )
    assert started.status == 303 and started.headers["Location"] == "/officer/ledger?run=1"
    for _ in range(100):
        page = await (await portal.client.get("/officer/ledger?run=1")).text()
        if "Verifying" not in page:
            break
        assert 'http-equiv="refresh"' in page
        await asyncio.sleep(0.05)
    assert "The ledger is intact" in page
    assert "no witnesses configured" in page


async def test_an_administrator_manages_people(portal: Portal) -> None:
    await person("root", level="TOP SECRET", roles=("admin", "reader"))
    client = portal.client
    await sign_in(client, "root")
    token = await form_token(client, "/admin/people")
    created = await client.post(
        "/admin/people",
        data=[
            ("csrf", token),
            ("username", "carol"),
            ("display_name", "Carol Ito"),
            ("level", "SECRET"),
            ("compartments", "logistics"),
            ("nationality", "jpn"),
            ("roles", "reader"),
            ("roles", "uploader"),
        ],
    )
    assert created.status == 201
    page = await created.text()
    password = re.search(r'<span class="once">([^<]+)</span>', page)
    assert password is not None
    carol = await Principal.get(username="carol")
    assert (carol.compartments, carol.nationality, sorted(carol.roles)) == (
        ["LOGISTICS"],
        "JPN",
        ["reader", "uploader"],
    )
    duplicate = await client.post(
        "/admin/people",
        data={"csrf": token, "username": "carol", "level": "SECRET", "roles": "reader"},
    )
    assert duplicate.status == 409 and "already exists" in await duplicate.text()

    changed = await client.post(
        "/admin/people/carol",
        data=[
            ("csrf", token),
            ("display_name", "Carol Ito"),
            ("level", "CONFIDENTIAL"),
            ("compartments", ""),
            ("nationality", "JPN"),
            ("roles", "reader"),
        ],
        allow_redirects=False,
    )
    assert changed.status == 303
    carol = await Principal.get(username="carol")
    assert (carol.level, carol.roles) == ("CONFIDENTIAL", ["reader"])
    disabled = await client.post(
        "/admin/people/carol/disable", data={"csrf": token}, allow_redirects=False
    )
    assert disabled.status == 303 and (await Principal.get(username="carol")).disabled
    changes = [e["change"] for e in await ledger_entries(portal.app, "principal.changed")]
    assert changes[-3:] == ["created", "updated", "disabled"]

    for path in ("/admin/clients", "/admin/keys"):
        response = await client.get(path)
        assert response.status == 200, await response.text()
    keys = await (await client.get("/admin/keys")).text()
    assert portal.settings.keys.kek in keys and "Sekisho CA" in keys


async def test_personnel_see_their_own_history(portal: Portal) -> None:
    await person("alice")
    await sign_in(portal.client, "alice")
    await portal.client.get("/documents?q=fuel")
    history = await (await portal.client.get("/me/history")).text()
    assert "search" in history and "results_0" in history
    assert PASSWORD not in history


async def test_an_auditor_reads_the_trail_alerts_and_ledger_but_verifies_nothing(
    portal: Portal,
) -> None:
    await person("alice")
    await person("audrey", level="SECRET", roles=("auditor",))
    client = portal.client
    await sign_in(client, "alice")
    assert (await client.get("/officer/trail")).status == 403  # a reader is no auditor
    await sign_in(client, "audrey")
    home = await (await client.get("/")).text()
    for link in ("/officer/trail", "/officer/alerts", "/officer/activity", "/officer/ledger"):
        assert f'href="{link}"' in home, link
        assert (await client.get(link)).status == 200, link
    assert 'href="/admin/people"' not in home and 'href="/upload"' not in home
    exported = await client.get("/officer/trail.json?outcome=denied")
    assert exported.status == 200 and "events" in json.loads(await exported.text())
    ledger = await (await client.get("/officer/ledger")).text()
    assert 'action="/officer/ledger/verify"' not in ledger  # read-only: no verification runs
    token = await form_token(client, "/")
    started = await client.post(
        "/officer/ledger/verify", data={"csrf": token}, allow_redirects=False
    )
    assert started.status == 403


async def test_administrators_grant_the_auditor_role(portal: Portal) -> None:
    await person("root", level="TOP SECRET", roles=("admin", "reader"))
    await person("audrey", level="SECRET", roles=("reader",))
    client = portal.client
    await sign_in(client, "root")
    people = await (await client.get("/admin/people")).text()
    assert 'value="auditor"' in people
    admin = await Principal.get(username="root")
    bearer = {"Authorization": f"Bearer {await issue_token(principal=admin)}"}
    changed = await client.patch(
        "/api/v1/admin/users/audrey", json={"roles": ["auditor"]}, headers=bearer
    )
    assert changed.status == 200, await changed.text()
    assert (await Principal.get(username="audrey")).roles == ["auditor"]
    refused = await client.patch(
        "/api/v1/admin/users/audrey", json={"roles": ["inspector"]}, headers=bearer
    )
    assert refused.status == 400 and "auditor" in (await refused.json())["message"]


async def test_trail_and_my_activity_name_documents_only_where_the_reader_is_cleared(
    portal: Portal,
) -> None:
    await person("alice", roles=("reader", "uploader", "officer"))
    await person("olivia", level="TOP SECRET", roles=("reader", "officer", "uploader"))
    client = portal.client
    await sign_in(client, "olivia")
    top_id = await upload(client, "Operation plan", "TOP SECRET")
    await sign_in(client, "alice")
    own_id = await upload(client, "Convoy plan", "SECRET")
    assert (await client.get(f"/documents/{top_id}")).status == 404

    mine = await (await client.get("/me/history")).text()
    assert '<span class="event-title">Convoy plan</span>' in mine
    assert top_id[:8] in mine and "Operation plan" not in mine
    alices_trail = await (await client.get("/officer/trail")).text()
    assert "Convoy plan" in alices_trail and "Operation plan" not in alices_trail

    await sign_in(client, "olivia")
    trail = await (await client.get("/officer/trail")).text()
    assert '<span class="event-title">Operation plan</span>' in trail
    assert '<span class="event-title">Convoy plan</span>' in trail
    assert own_id[:8] in trail
