"""``GET /api/v1/trail`` in-process: roles, filters, pages, CSV export, ledger indexes."""

from __future__ import annotations

import csv
import io

from gateway.app_keys import LEDGER
from gateway.documents.models import AccessEvent
from tests.gateway.app_fixtures import AppNode, MakePerson
from tests.gateway.ledger_rows import ledger_entries

TRAIL = "/api/v1/trail"
DOC = "0b5e0f5c-3f43-4c56-9a0e-1d2b3c4d5e6f"


async def record_access(node: AppNode, actor: str, outcome: str, reason: str) -> AccessEvent:
    """What the document core does: a ledger entry, then the trail row with its queue id."""
    ledger = node.client.app[LEDGER]
    ticket = await ledger.record(
        "document.accessed",
        document=DOC,
        version=1,
        actor=actor,
        action="download",
        outcome=outcome,
        reason=reason,
        source="192.0.2.1",
    )
    await ledger.integrated(ticket)
    return await AccessEvent.create(
        actor=actor,
        document_id=DOC,
        version=1,
        action="download",
        outcome=outcome,
        reason=reason,
        source="192.0.2.1",
        node=ledger.node,
        ledger_queue_id=ticket.queue_id,
    )


async def test_officers_auditors_and_admins_only(
    app_node: AppNode, make_person: MakePerson
) -> None:
    client = app_node.client
    assert (await client.get(TRAIL)).status == 401
    for username, roles in (("rita", ("reader",)), ("ursula", ("uploader", "reader"))):
        response = await client.get(TRAIL, headers=await make_person(username, roles=roles))
        assert response.status == 403
        response = await client.get(
            TRAIL, params={"format": "csv"}, headers=await make_person(username + "2", roles=roles)
        )
        assert response.status == 403
    for username, roles in (
        ("olivia", ("officer",)),
        ("audrey", ("auditor",)),
        ("boss", ("admin",)),
    ):
        response = await client.get(TRAIL, headers=await make_person(username, roles=roles))
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"


async def test_events_carry_their_ledger_index(app_node: AppNode, make_person: MakePerson) -> None:
    officer = await make_person("olivia", roles=("officer",))
    granted = await record_access(app_node, "person:alice", "granted", "granted")
    denied = await record_access(app_node, "person:bob", "denied", "compartments")
    response = await app_node.client.get(TRAIL, headers=officer)
    body = await response.json()
    assert body["next_cursor"] is None
    events = body["events"]
    assert [e["id"] for e in events] == [denied.id, granted.id]
    assert events[0]["actor"] == "person:bob" and events[0]["reason"] == "compartments"
    assert events[0]["at"].endswith("Z")
    ledger = app_node.client.app[LEDGER]
    for event in events:
        assert isinstance(event["ledger_index"], int)
        index = event["ledger_index"]
        [entry] = await ledger.opened_entries(index, index + 1)
        assert (entry["actor"], entry["outcome"]) == (event["actor"], event["outcome"])
        stored = await AccessEvent.get(id=event["id"])
        assert stored.ledger_index == event["ledger_index"]  # written back

    response = await app_node.client.get(
        TRAIL, params={"person": "bob", "outcome": "denied"}, headers=officer
    )
    assert [e["id"] for e in (await response.json())["events"]] == [denied.id]


async def test_json_pages_follow_the_cursor(app_node: AppNode, make_person: MakePerson) -> None:
    officer = await make_person("olivia", roles=("officer",))
    await seed(app_node, 12)
    seen: list[int] = []
    params = {"limit": "5"}
    while True:
        response = await app_node.client.get(TRAIL, params=params, headers=officer)
        body = await response.json()
        seen.extend(e["id"] for e in body["events"])
        if body["next_cursor"] is None:
            break
        params = {"limit": "5", "cursor": body["next_cursor"]}
    assert len(seen) == 12 and seen == sorted(seen, reverse=True)


async def test_csv_export_streams_every_match(app_node: AppNode, make_person: MakePerson) -> None:
    officer = await make_person("olivia", roles=("officer",))
    await seed(app_node, 1101)
    await AccessEvent.create(
        actor="person:mallory",
        action="download",
        outcome="denied",
        reason="=HYPERLINK(evil)",
        node="n",
        ledger_queue_id=0,
    )
    response = await app_node.client.get(TRAIL, params={"format": "csv"}, headers=officer)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Transfer-Encoding"] == "chunked"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="sekisho-trail-sekisho-1-')
    assert disposition.endswith("Z.csv") and 'Z.csv"; filename*=' in disposition
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == [
        "id",
        "at",
        "actor",
        "document_id",
        "version",
        "action",
        "outcome",
        "reason",
        "source",
        "node",
        "ledger_index",
    ]
    assert len(rows) == 1 + 1102
    assert rows[1][2] == "person:mallory" and rows[1][7] == "'=HYPERLINK(evil)"
    assert rows[1][3] == "" and rows[1][10] == ""

    response = await app_node.client.get(
        TRAIL, params={"format": "csv", "person": "p1", "limit": "3"}, headers=officer
    )
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert len(rows) == 4 and {r[2] for r in rows[1:]} == {"person:p1"}


async def test_bad_filters_name_the_parameter(app_node: AppNode, make_person: MakePerson) -> None:
    officer = await make_person("olivia", roles=("officer",))
    for params, parameter in (
        ({"from": "yesterday"}, "from"),
        ({"limit": "1000"}, "limit"),
        ({"outcome": "maybe"}, "outcome"),
        ({"document": "../../etc"}, "document"),
        ({"format": "xlsx"}, "format"),
        ({"cursor": "abc"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ):
        response = await app_node.client.get(TRAIL, params=params, headers=officer)
        assert response.status == 400, params
        body = await response.json()
        assert body["error"] == "invalid_parameter" and body["parameter"] == parameter
        assert parameter in body["message"]


async def seed(node: AppNode, count: int) -> None:
    await AccessEvent.bulk_create(
        [
            AccessEvent(
                actor=f"person:p{n % 4}",
                document_id=DOC,
                version=1,
                action="download",
                outcome="granted",
                reason="granted",
                source="192.0.2.1",
                node="sekisho-1",
                ledger_queue_id=10_000_000 + n,
            )
            for n in range(count)
        ]
    )


async def test_each_trail_query_is_ledgered_with_its_filters(
    app_node: AppNode, make_person: MakePerson
) -> None:
    officer = await make_person("olivia", roles=("officer",))
    client = app_node.client
    await (await client.get(TRAIL, params={"person": "alice"}, headers=officer)).read()
    await (await client.get(TRAIL, params={"format": "csv"}, headers=officer)).read()
    viewed = await ledger_entries("oversight.viewed")
    assert [(e["actor"], e["view"], e["filters"]) for e in viewed] == [
        ("person:olivia", "trail", {"actor": "person:alice", "format": "json"}),
        ("person:olivia", "trail", {"format": "csv"}),
    ]
