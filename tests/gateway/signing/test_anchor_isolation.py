"""Custody chains belong to their client: knowing a record id or a subject grants nothing.

Issue #14: record ids are public (ledger entries name them), and a client with
only the ``anchor`` scope read another client's subject and metadata and
appended a link to its chain. Now a chain is its owner's; the owner's chain
writers may read and extend it; to every other client each anchors route
answers the same 404 as for a record or chain that does not exist.
"""

from __future__ import annotations

import json
import uuid

from gateway.ledger.entries import open_entry
from gateway.signing.clients import ClientSpec
from gateway.signing.models import AnchorRecord
from tests.gateway.signing.api_node import Node
from tests.gateway.signing.test_anchors import anchor, anchor_body

SUBJECT = "part:SN-4711-A"


async def test_another_clients_chain_is_invisible_and_cannot_be_extended(node: Node) -> None:
    depot = await node.add_client(scopes=["anchor"], name="depot-3")
    rival = await node.add_client(scopes=["anchor"], name="rival-9")
    _, first = await anchor(node, depot, anchor_body(SUBJECT, "part.received", b"f", secret="s1"))
    record = first["record"]
    entry = open_entry(first["entry"].encode(), json.dumps(first["opening"]).encode())
    assert entry["record"] == record  # the id is the client's; the ledger commits to it

    # reading one record: the same 404 as an id that never existed
    theirs = await node.client.get(f"/api/v1/anchors/{record}", headers=rival)
    nothing = await node.client.get(f"/api/v1/anchors/{uuid.uuid4()}", headers=rival)
    assert theirs.status == nothing.status == 404
    assert await theirs.json() == await nothing.json()

    # reading the chain by naming its owner: the same 404 as a client that does not exist
    named = await node.client.get(
        "/api/v1/anchors", params={"subject": SUBJECT, "owner": "depot-3"}, headers=rival
    )
    unknown = await node.client.get(
        "/api/v1/anchors", params={"subject": SUBJECT, "owner": "no-such-client"}, headers=rival
    )
    assert named.status == unknown.status == 404
    assert await named.json() == await unknown.json()
    body = await named.text()
    assert "s1" not in body and record not in body

    # the same subject without an owner is the rival's own (empty) chain
    own = await node.client.get("/api/v1/anchors", params={"subject": SUBJECT}, headers=rival)
    assert (await own.json())["links"] == []

    # extending the depot's chain: refused like an unknown owner, and nothing written
    forged = anchor_body(SUBJECT, "part.handed-over", b"forged")
    for owner in ("depot-3", "no-such-client"):
        refused = await node.client.post(
            "/api/v1/anchors", json={**forged, "owner": owner}, headers=rival
        )
        assert refused.status == 404, owner
        assert (await refused.json())["error"] == "no_such_chain"
    assert await AnchorRecord.filter(owner="depot-3").count() == 1

    # anchoring the same subject without an owner starts the rival's own chain
    _, mine = await anchor(node, rival, anchor_body(SUBJECT, "part.received", b"r"))
    assert (mine["owner"], mine["sequence"], mine["previous"]) == ("rival-9", 1, None)
    depot_chain = await node.client.get(
        "/api/v1/anchors", params={"subject": SUBJECT}, headers=depot
    )
    links = (await depot_chain.json())["links"]
    assert [link["record"] for link in links] == [record]  # the depot's chain is untouched
    assert links[0]["metadata"] == {"secret": "s1"}


async def test_chain_writers_read_and_extend_until_removed(node: Node) -> None:
    unit = await node.add_client(scopes=["anchor"], name="unit-12")
    depot = await node.add_client(scopes=["anchor"], name="depot-3")
    clients = node.managers()[1]
    await clients.update("depot-3", ClientSpec(chain_writers=("unit-12",)))
    _, first = await anchor(node, depot, anchor_body(SUBJECT, "part.handed-over", b"1"))
    body = {**anchor_body(SUBJECT, "part.received", b"2"), "owner": "depot-3"}
    _, second = await anchor(node, unit, body)
    assert (second["owner"], second["client"], second["sequence"]) == ("depot-3", "unit-12", 2)
    assert second["previous"] == first["leaf_hash"]
    opened = open_entry(second["entry"].encode(), json.dumps(second["opening"]).encode())
    assert opened["owner"] == "depot-3"
    read = await node.client.get(f"/api/v1/anchors/{first['record']}", headers=unit)
    assert read.status == 200

    # the grant is the depot's to give (not the unit's) and is ledgered
    changes = await node.entries("client.changed")
    assert changes[-1]["client"] == "depot-3" and changes[-1]["chain_writers"] == ["unit-12"]
    await clients.update("depot-3", ClientSpec(chain_writers=()))
    gone = await node.client.get(f"/api/v1/anchors/{first['record']}", headers=unit)
    assert gone.status == 404
    refused = await node.client.post("/api/v1/anchors", json=body, headers=unit)
    assert refused.status == 404


async def test_a_malformed_owner_is_a_clean_400(node: Node) -> None:
    depot = await node.add_client(scopes=["anchor"], name="depot-3")
    for owner in ("depot-3\n", "Depot", "", 7):
        body = {**anchor_body(SUBJECT, "part.received", b"x"), "owner": owner}
        response = await node.client.post("/api/v1/anchors", json=body, headers=depot)
        assert response.status == 400, owner
        assert (await response.json())["error"] == "bad_owner"
    query = await node.client.get(
        "/api/v1/anchors", params={"subject": SUBJECT, "owner": "depot-3\n"}, headers=depot
    )
    assert query.status == 400
