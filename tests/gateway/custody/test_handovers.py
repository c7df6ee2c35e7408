"""Two-party hand-overs: anchored only once both parties' signatures are present and verify."""

from __future__ import annotations

import base64
import os
from typing import Any

from gateway.custody.models import CustodyHandover
from tests.gateway.custody.chains import Parties, anchor, body, parties, sign_digest, store_rule
from tests.gateway.signing.api_node import Node

HANDOVERS = "/api/v1/custody/handovers"


async def to_depot(node: Node, who: Parties) -> None:
    for writer, state in (
        ("factory", "manufactured"),
        ("inspector", "inspected"),
        ("depot-3", "depot"),
    ):
        status, _ = await anchor(node, who.headers[writer], body(state))
        assert status == 201


async def open_handover(node: Node, who: Parties, **changes: Any) -> dict[str, Any]:
    payload = {
        **body("in-transit", b"hand-over form"),
        "giver": "client:depot-3",
        "receiver": "client:carrier-7",
        **changes,
    }
    response = await node.client.post(HANDOVERS, json=payload, headers=who.headers["depot-3"])
    assert response.status == 201, await response.text()
    opened: dict[str, Any] = await response.json()
    return opened


async def sign(
    node: Node,
    who: Parties,
    party: str,
    handover: dict[str, Any],
    signature: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    signature = signature or await sign_digest(
        node, who.headers[party], who.keys[party], handover["sha256"]
    )
    response = await node.client.post(
        f"{HANDOVERS}/{handover['handover']}/signatures",
        json=signature,
        headers=who.headers[party],
    )
    result: dict[str, Any] = await response.json()
    return response.status, result


async def test_both_signatures_anchor_the_link(node: Node) -> None:
    await store_rule(node)
    who = await parties(node)
    await to_depot(node, who)
    handover = await open_handover(node, who)
    assert handover["status"] == "pending" and handover["document"]["state"] == "in-transit"

    status, half = await sign(node, who, "depot-3", handover)
    assert status == 200 and half["status"] == "pending" and "link" not in half
    listed = await (await node.client.get(HANDOVERS, headers=who.headers["carrier-7"])).json()
    assert [h["handover"] for h in listed["handovers"]] == [handover["handover"]]

    status, done = await sign(node, who, "carrier-7", handover)
    assert status == 200 and done["status"] == "anchored"
    link = done["link"]
    assert link["sequence"] == 4 and link["handover"] == handover["handover"]
    assert link["client"] == "depot-3" and link["metadata"] == {"state": "in-transit"}
    assert link["opening"]["fields"]["handover_sha256"] == handover["sha256"]
    assert (await (await node.client.get(HANDOVERS, headers=who.headers["carrier-7"])).json())[
        "handovers"
    ] == []
    changes = [(e["change"], e["party"]) for e in await node.entries("custody.handover")]
    assert changes == [
        ("opened", "client:depot-3"),
        ("signed", "client:depot-3"),
        ("signed", "client:carrier-7"),
    ]


async def test_one_missing_or_forged_signature_anchors_nothing(node: Node) -> None:
    await store_rule(node)
    who = await parties(node)
    await to_depot(node, who)
    handover = await open_handover(node, who)
    await sign(node, who, "depot-3", handover)

    forged = {
        "key": who.keys["carrier-7"],
        "version": 1,
        "signature": base64.b64encode(os.urandom(70)).decode(),
    }
    status, error = await sign(node, who, "carrier-7", handover, forged)
    assert status == 400 and error["error"] == "bad_signature"
    other_digest = await sign_digest(
        node, who.headers["carrier-7"], who.keys["carrier-7"], "00" * 32
    )  # a real signature, over something else
    status, error = await sign(node, who, "carrier-7", handover, other_digest)
    assert status == 400 and error["error"] == "bad_signature"
    giver_key = {
        **await sign_digest(node, who.headers["depot-3"], who.keys["depot-3"], handover["sha256"])
    }
    status, error = await sign(node, who, "carrier-7", handover, giver_key)
    assert status == 403  # not a key on the receiver's allow-list
    status, error = await sign(node, who, "intruder", handover, giver_key)
    assert status == 403 and error["error"] == "not_a_party"  # a chain writer, not a party

    row = await CustodyHandover.get(id=handover["handover"])
    assert row.status == "pending" and row.receiver_signature is None
    status, direct = await anchor(node, who.headers["depot-3"], body("in-transit"))
    assert status == 409 and direct["error"] == "custody_handover_required"
    chain = await node.client.get(
        "/api/v1/anchors",
        params={"subject": body(None)["subject"], "owner": "factory"},
        headers=who.headers["depot-3"],
    )
    assert len((await chain.json())["links"]) == 3


async def test_a_hand_over_between_parties_the_rule_does_not_name_is_refused(node: Node) -> None:
    await store_rule(node)
    who = await parties(node)
    await to_depot(node, who)
    handover = await open_handover(node, who, giver="client:depot-3", receiver="client:unit-12")
    response = await node.client.post(
        f"{HANDOVERS}/{handover['handover']}/signatures",
        json=await sign_digest(
            node, who.headers["depot-3"], who.keys["depot-3"], handover["sha256"]
        ),
        headers=who.headers["depot-3"],
    )
    assert response.status == 200  # unit-12 has no key: the hand-over stays pending
    bad = await node.client.post(
        HANDOVERS,
        json={**body("in-transit"), "giver": "client:x", "receiver": "client:x"},
        headers=who.headers["depot-3"],
    )
    assert bad.status == 400 and (await bad.json())["error"] == "bad_party"
    missing = await node.client.post(
        HANDOVERS,
        json={**body(None), "giver": "client:a", "receiver": "client:b"},
        headers=who.headers["depot-3"],
    )
    assert missing.status == 400 and (await missing.json())["error"] == "bad_metadata"


async def test_strangers_learn_nothing_of_hand_overs_and_chains(node: Node) -> None:
    await store_rule(node)
    who = await parties(node)
    await to_depot(node, who)
    handover = await open_handover(node, who)
    stranger = await node.add_client(scopes=["anchor"], name="stranger")
    seen = await node.client.get(f"{HANDOVERS}/{handover['handover']}", headers=stranger)
    assert seen.status == 404 and (await seen.json())["error"] == "no_such_handover"
    random = await node.client.get(
        f"{HANDOVERS}/{'0' * 8}-0000-4000-8000-{'0' * 12}", headers=stranger
    )
    assert (await random.json()) == (await seen.json())  # the same answer as for nothing
    assert (await (await node.client.get(HANDOVERS, headers=stranger)).json())["handovers"] == []
    chain = await node.client.get(
        "/api/v1/custody/chains",
        params={"subject": body(None)["subject"], "owner": "factory"},
        headers=stranger,
    )
    assert chain.status == 404 and (await chain.json())["error"] == "no_such_chain"
    opened = await node.client.post(
        HANDOVERS,
        json={**body("in-transit"), "giver": "client:stranger", "receiver": "client:carrier-7"},
        headers=stranger,
    )
    assert opened.status == 404  # not a writer of factory's chains
