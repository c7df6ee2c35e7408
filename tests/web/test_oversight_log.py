"""Officers see who looked at the trail (#13 item 5): the oversight log, page and API.

Every oversight action (trail views and exports with their filters, alert and
activity views, whole-ledger verification runs) is listed newest first, paged and
filterable; looking at the list is itself one recorded action per look.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from aiohttp import ClientResponse

from gateway.auth.tokens import issue_token
from gateway.oversight.models import OversightEvent
from tests.web.conftest import Portal, form_token, ledger_entries, person, sign_in
from web.portal.app_keys import PORTAL


async def _get(portal: Portal, path: str, **kw: object) -> ClientResponse:
    response = await portal.client.get(path, **kw)  # type: ignore[arg-type]
    await response.read()
    return response


async def _officer_looks_around(portal: Portal) -> None:
    """olivia's oversight actions, oldest first: 2 trail views, 1 export, alerts, a run."""
    await person("olivia", level="TOP SECRET", roles=("reader", "officer"))
    assert (await sign_in(portal.client, "olivia")).status == 303
    for path in (
        "/officer/trail?person=alice&outcome=denied",
        "/officer/trail?action=content",
        "/officer/trail.csv?person=bob",
        "/officer/alerts?period=7d",
    ):
        assert (await _get(portal, path)).status == 200, path
    token = await form_token(portal.client, "/officer/ledger")
    started = await portal.client.post(
        "/officer/ledger/verify", data={"csrf": token}, allow_redirects=False
    )
    assert started.status == 303
    await portal.app[PORTAL].verifier.wait()


async def test_the_page_lists_who_looked_newest_first_and_records_each_look(
    portal: Portal,
) -> None:
    await _officer_looks_around(portal)
    response = await portal.client.get("/officer/oversight")
    html = await response.text()
    assert response.status == 200
    assert 'href="/officer/oversight"' in html  # in the officers' navigation
    body = html.split("<tbody>", 1)[1]
    order = [body.index(view) for view in ("ledger.verify", ">alerts<", "trail.export")]
    assert order == sorted(order), "newest first"
    for shown in ("actor=person:alice", "outcome=denied", "action=content", "period=7d", "as=csv"):
        assert shown in body, shown
    assert "olivia" in body

    filtered = await (await portal.client.get("/officer/oversight?view=trail")).text()
    rows = filtered.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")
    assert rows == 2  # the two trail views, not the export, not the looks at this page

    entries = await ledger_entries(portal.app, "oversight.viewed")
    looks = [e for e in entries if e["view"] == "oversight"]
    assert [e["filters"] for e in looks] == [
        {"format": "json", "limit": "50"},
        {"format": "json", "limit": "50", "view": "trail"},
    ]
    assert await OversightEvent.all().count() == len(entries)  # one row per entry


async def test_exports_and_paging(portal: Portal) -> None:
    await _officer_looks_around(portal)
    exported = await portal.client.get("/officer/oversight.csv?person=olivia")
    assert exported.status == 200
    assert exported.headers["Content-Disposition"].startswith('attachment; filename="sekisho-')
    table = list(csv.reader(io.StringIO(await exported.text())))
    assert table[0] == ["id", "at", "actor", "view", "filters", "node", "ledger_index"]
    assert [row[3] for row in table[1:]] == [
        "oversight.export",  # this export, recorded before it is read
        "ledger.verify",
        "alerts",
        "trail.export",
        "trail",
        "trail",
    ]
    as_json = await (await portal.client.get("/officer/oversight.json?view=alerts")).json()
    assert [a["filters"] for a in as_json["actions"]] == [{"period": "7d"}]

    first = await (await portal.client.get("/officer/oversight?person=olivia")).text()
    assert "Older" not in first  # 8 actions: one page of 50
    bad = await portal.client.get("/officer/oversight?from=yesterday")
    assert bad.status == 400 and "RFC 3339" in await bad.text()


async def test_only_overseers_see_the_page(portal: Portal) -> None:
    await person("rita", level="SECRET", roles=("reader",))
    await person("aude", level="SECRET", roles=("reader", "auditor"))
    assert (await sign_in(portal.client, "rita")).status == 303
    assert (await _get(portal, "/officer/oversight")).status == 403
    assert (await _get(portal, "/officer/oversight.csv")).status == 403
    portal.client.session.cookie_jar.clear()
    assert (await sign_in(portal.client, "aude")).status == 303
    assert (await _get(portal, "/officer/oversight")).status == 200
    assert await OversightEvent.filter(actor="person:aude").count() == 1
    assert await OversightEvent.filter(actor="person:rita").count() == 0


async def test_the_api_pages_filters_exports_and_records_each_call(portal: Portal) -> None:
    await _officer_looks_around(portal)
    olivia = await person("olivia2", level="SECRET", roles=("reader", "officer"))
    reader = await person("rob", level="SECRET", roles=("reader",))
    officer = {"Authorization": f"Bearer {await issue_token(principal=olivia)}"}
    client = portal.client

    anonymous = await client.get("/api/v1/oversight")
    assert anonymous.status == 401
    refused = await client.get(
        "/api/v1/oversight",
        headers={"Authorization": f"Bearer {await issue_token(principal=reader)}"},
    )
    assert refused.status == 403 and (await refused.json())["error"]
    bad = await client.get("/api/v1/oversight?outcome=denied", headers=officer)
    assert bad.status == 400 and (await bad.json())["parameter"] == "outcome"

    first = await (
        await client.get("/api/v1/oversight?person=olivia&limit=3", headers=officer)
    ).json()
    assert [a["view"] for a in first["actions"]] == ["ledger.verify", "alerts", "trail.export"]
    assert first["actions"][0]["actor"] == "person:olivia"
    second = await (
        await client.get(
            f"/api/v1/oversight?person=olivia&limit=3&cursor={first['next_cursor']}",
            headers=officer,
        )
    ).json()
    assert [a["view"] for a in second["actions"]] == ["trail", "trail"]
    assert second["next_cursor"] is None
    assert second["actions"][1]["filters"] == {
        "actor": "person:alice",
        "format": "json",
        "limit": "50",
        "outcome": "denied",
    }

    mine = await (
        await client.get("/api/v1/oversight?person=olivia2&view=oversight", headers=officer)
    ).json()
    assert len(mine["actions"]) == 3  # the two pages above and this call, once each
    assert mine["actions"][0]["filters"]["view"] == "oversight"

    later = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    none = await (
        await client.get("/api/v1/oversight", params={"from": later}, headers=officer)
    ).json()
    assert none == {"actions": [], "next_cursor": None}

    exported = await client.get("/api/v1/oversight?format=csv&view=alerts", headers=officer)
    assert exported.status == 200 and exported.content_type == "text/csv"
    table = list(csv.reader(io.StringIO(await exported.text())))
    assert [row[3] for row in table[1:]] == ["alerts"]
    assert table[1][4] == "period=7d"
