"""Record anchoring: receipts that verify offline, custody chains in order, no forks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.ledger.entries import canonical_json, open_entry
from gateway.signing.clients import ClientSpec
from gateway.tlog.merkle import leaf_hash
from gateway.tlog.receipt import parse_receipt, verify_receipt
from tests.gateway.signing.api_node import Headers, Node
from tests.nodes import run_cli


def anchor_body(subject: str, kind: str, content: bytes, **metadata: Any) -> dict[str, Any]:
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    return {"subject": subject, "kind": kind, "digest": digest, "metadata": metadata}


async def anchor(
    node: Node, headers: Headers, body: dict[str, Any], query: str = ""
) -> tuple[int, dict[str, Any]]:
    response = await node.client.post(f"/api/v1/anchors{query}", json=body, headers=headers)
    assert response.status in (201, 202), await response.text()
    result: dict[str, Any] = await response.json()
    assert response.headers["Location"] == f"/api/v1/anchors/{result['record']}"
    return response.status, result


async def log_key(node: Node) -> dict[str, Any]:
    response = await node.client.get("/api/v1/ledger/key")
    assert response.status == 200
    key: dict[str, Any] = await response.json()
    return key


@pytest.mark.slow  # runs the CLI
async def test_wait_returns_a_receipt_that_verifies_offline(node: Node, tmp_path: Path) -> None:
    headers = await node.add_client(scopes=["anchor"], name="drone-authenticator")
    footage = b"\x00\x01 drone footage bytes" * 1000
    body = anchor_body(
        "drone:UAV-17/flight-2026-11-23-04", "footage.captured", footage,
        captured_at="2026-11-23T04:10:00Z", lat=35.6895, lon=139.6917,
    )  # fmt: skip
    status, link = await anchor(node, headers, body, "?wait=true")
    assert status == 201
    assert link["sequence"] == 1 and link["previous"] is None
    assert isinstance(link["index"], int) and link["receipt"].startswith("c2sp.org/tlog-proof@v1")

    entry = link["entry"].encode()
    assert leaf_hash(entry).hex() == link["leaf_hash"]
    assert b"drone-authenticator" not in entry  # the leaf holds commitments only
    fields = open_entry(entry, json.dumps(link["opening"]).encode())
    assert fields["type"] == "record.anchored"
    assert fields["client"] == "drone-authenticator"
    assert fields["digest"] == "sha256:" + hashlib.sha256(footage).hexdigest()
    assert fields["subject_sha256"] == hashlib.sha256(body["subject"].encode()).hexdigest()
    assert fields["metadata_sha256"] == hashlib.sha256(canonical_json(body["metadata"])).hexdigest()
    assert fields["record"] == link["record"] and fields["sequence"] == 1
    assert "UAV-17" not in entry.decode() and "35.6895" not in entry.decode()  # hashes only

    key = await log_key(node)
    checkpoint = verify_receipt(
        parse_receipt(link["receipt"]), entry, key["name"], base64.b64decode(key["public_key"])
    )
    assert checkpoint.size > link["index"]

    receipt_file, entry_file = tmp_path / "receipt.txt", tmp_path / "entry.json"
    receipt_file.write_text(link["receipt"])
    entry_file.write_bytes(entry)
    result = run_cli(
        ["verify", str(receipt_file), "--key", key["vkey"], "--entry", str(entry_file)],
        tmp_path / "unused",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "receipt OK" in result.stdout
    entry_file.write_bytes(entry.replace(b'"record.anchored"', b'"record.anchoredX"'))
    tampered = run_cli(
        ["verify", str(receipt_file), "--key", key["vkey"], "--entry", str(entry_file)],
        tmp_path / "unused",
    )
    assert tampered.returncode != 0


async def test_custody_chain_in_order_with_receipts(node: Node) -> None:
    unit = await node.add_client(scopes=["anchor"], name="unit-12")
    depot = await node.add_client(scopes=["anchor"], name="depot-3")
    await node.managers()[1].update("depot-3", ClientSpec(chain_writers=("unit-12",)))
    subject = "part:SN-4711-A"
    hand_overs = [
        (depot, "part.received", {"from": "manufacturer", "to": "depot-3"}),
        (depot, "part.inspected", {"by": "depot-3", "result": "pass"}),
        (depot, "part.handed-over", {"from": "depot-3", "to": "unit-12"}),
        (unit, "part.received", {"from": "depot-3", "to": "unit-12"}),
    ]
    records = []
    for number, (headers, kind, metadata) in enumerate(hand_overs):
        body = anchor_body(subject, kind, f"form {number}".encode(), **metadata)
        body["owner"] = "depot-3"  # the unit extends the depot's chain, as its chain writer
        records.append((await anchor(node, headers, body))[1])
    await anchor(node, depot, anchor_body("part:SN-other", "part.received", b"x"))
    assert [r["sequence"] for r in records] == [1, 2, 3, 4]
    assert records[0]["index"] is None  # not waited for

    of_depot = {"subject": subject, "owner": "depot-3"}
    response = await node.client.get("/api/v1/anchors", params=of_depot, headers=unit)
    assert response.status == 200
    chain = await response.json()
    links = chain["links"]
    assert chain["subject"] == subject and chain["next_after"] is None
    assert chain["owner"] == "depot-3" and {link["owner"] for link in links} == {"depot-3"}
    assert [link["record"] for link in links] == [r["record"] for r in records]
    assert [link["kind"] for link in links] == [k for _, k, _ in hand_overs]
    assert [link["client"] for link in links] == ["depot-3"] * 3 + ["unit-12"]
    assert links[3]["metadata"] == {"from": "depot-3", "to": "unit-12"}
    key = await log_key(node)
    previous = None
    for link in links:
        entry = open_entry(link["entry"].encode(), json.dumps(link["opening"]).encode())
        assert entry["previous"] if previous else "previous" not in entry
        assert entry.get("previous") == previous  # each link commits to the one before
        previous = leaf_hash(link["entry"].encode()).hex()
        for _ in range(200):  # the sequencer integrates within milliseconds
            if link["receipt"] is not None:
                break
            await asyncio.sleep(0.02)
            link = await (
                await node.client.get(f"/api/v1/anchors/{link['record']}", headers=unit)
            ).json()
        verify_receipt(
            parse_receipt(link["receipt"]),
            link["entry"].encode(),
            key["name"],
            base64.b64decode(key["public_key"]),
        )
    indexes = [
        (await (await node.client.get(f"/api/v1/anchors/{r['record']}", headers=unit)).json())[
            "index"
        ]
        for r in records
    ]
    assert indexes == sorted(indexes)  # ledger order is chain order

    page = await node.client.get(
        "/api/v1/anchors", params={**of_depot, "limit": "2", "after": "1"}, headers=unit
    )
    paged = await page.json()
    assert [link["sequence"] for link in paged["links"]] == [2, 3] and paged["next_after"] == 3
    empty = await node.client.get("/api/v1/anchors", params={"subject": "nobody"}, headers=unit)
    assert (await empty.json())["links"] == []


async def test_concurrent_anchors_never_fork_a_chain(node: Node) -> None:
    headers = await node.add_client(scopes=["anchor"])
    subject = "part:SN-race"
    bodies = [anchor_body(subject, "part.scanned", bytes([i])) for i in range(12)]
    results = await asyncio.gather(*(anchor(node, headers, b) for b in bodies))
    assert sorted(r["sequence"] for _, r in results) == list(range(1, 13))
    chain = await (
        await node.client.get("/api/v1/anchors", params={"subject": subject}, headers=headers)
    ).json()
    hashes = [None] + [link["leaf_hash"] for link in chain["links"]]
    assert [link["previous"] for link in chain["links"]] == hashes[:-1]
    entries = await node.entries("record.anchored")
    assert len(entries) == 12  # exactly one entry per anchor
    assert sorted(e["sequence"] for e in entries) == list(range(1, 13))
