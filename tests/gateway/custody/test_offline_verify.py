"""Offline re-verification of an exported chain: it passes as exported and fails at the
first altered link or rule version, naming the step (``sekisho custody verify``)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.app_keys import CUSTODY
from gateway.auth.identity import Identity
from gateway.custody.offline import ExportBroken, verify_export
from gateway.errors import NotFound
from gateway.ledger.audit.model import LogKey
from tests.gateway.custody.chains import SUBJECT, anchor, body, parties, store_rule
from tests.gateway.custody.test_handovers import open_handover, sign, to_depot
from tests.gateway.custody.test_rules import parts_rule
from tests.gateway.signing.api_node import Node
from tests.nodes import run_cli


async def exported(node: Node, headers: dict[str, str], links: int) -> dict[str, Any]:
    """The factory's chain export, once every link and rule version has its receipt."""
    for _ in range(500):
        response = await node.client.get(
            "/api/v1/custody/chains",
            params={"subject": SUBJECT, "owner": "factory"},
            headers=headers,
        )
        assert response.status == 200
        export: dict[str, Any] = await response.json()
        items = export["links"] + export["rules"]
        if len(export["links"]) == links and all(item["receipt"] for item in items):
            return export
        await asyncio.sleep(0.02)
    raise AssertionError("the chain's receipts did not arrive")


async def log_key(node: Node) -> tuple[LogKey, str]:
    key = await (await node.client.get("/api/v1/ledger/key")).json()
    return LogKey.from_vkey(key["vkey"]), str(key["vkey"])


async def full_chain(node: Node) -> dict[str, Any]:
    """manufactured -> inspected -> depot -> (hand-over) in-transit -> unit, exported."""
    await store_rule(node)
    who = await parties(node)
    await to_depot(node, who)
    handover = await open_handover(node, who)
    await sign(node, who, "depot-3", handover)
    status, done = await sign(node, who, "carrier-7", handover)
    assert status == 200 and done["status"] == "anchored"
    status, _ = await anchor(node, who.headers["unit-12"], body("unit"))
    assert status == 201
    return await exported(node, who.headers["factory"], 5)


def set_metadata(export: dict[str, Any]) -> None:
    export["links"][1]["metadata"]["state"] = "depot"


def drop_link(export: dict[str, Any]) -> None:
    del export["links"][2]


def loosen_rule(export: dict[str, Any]) -> None:
    export["rules"][0]["document"]["transitions"][1]["by"].append("client:intruder")


def other_rule_version(export: dict[str, Any]) -> None:
    export["links"][3]["rule_version"] = 2


def forge_receiver(export: dict[str, Any]) -> None:
    export["handovers"][0]["signatures"]["receiver"]["signature"] = export["handovers"][0][
        "signatures"
    ]["giver"]["signature"]


def swap_entry(export: dict[str, Any]) -> None:
    export["links"][4]["entry"] = export["links"][3]["entry"]


@pytest.mark.slow  # runs the CLI
async def test_an_exported_chain_verifies_offline(node: Node, tmp_path: Path) -> None:
    export = await full_chain(node)
    key, vkey = await log_key(node)
    result = verify_export(export, key)
    assert result.links == 5 and result.rules == ["spare-parts v1"] and result.state == "unit"
    assert export["holder"] == "client:unit-12" and export["state"] == "unit"
    assert export["handovers"][0]["document"]["receiver"] == "client:carrier-7"

    path = tmp_path / "chain.json"
    path.write_text(json.dumps(export))
    ok = run_cli(["custody", "verify", str(path), "--key", vkey], tmp_path / "unused")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "custody chain OK: 5 links" in ok.stdout
    set_metadata(export)
    path.write_text(json.dumps(export))
    broken = run_cli(["custody", "verify", str(path), "--key", vkey], tmp_path / "unused")
    assert broken.returncode == 1 and "link 2: metadata" in broken.stdout
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{")
    bad = run_cli(["custody", "verify", str(garbage), "--key", vkey], tmp_path / "unused")
    assert bad.returncode != 0 and bad.stderr.startswith("sekisho: error: the export is not JSON")


TAMPERS: list[tuple[Callable[[dict[str, Any]], None], int | None, str]] = [
    (set_metadata, 2, "metadata does not match"),
    (drop_link, 3, "sequence does not match"),
    (loosen_rule, None, "not the one its ledger entry recorded"),
    (other_rule_version, 4, "rule_version does not match"),
    (forge_receiver, 4, "two signatures"),
    (swap_entry, 5, "receipt does not verify"),
]


async def test_any_altered_link_or_rule_version_fails(node: Node) -> None:
    export = await full_chain(node)
    key, _ = await log_key(node)
    for tamper, step, says in TAMPERS:
        altered = copy.deepcopy(export)
        tamper(altered)
        with pytest.raises(ExportBroken) as caught:
            verify_export(altered, key)
        assert (caught.value.step, tamper.__name__) == (step, tamper.__name__)
        assert says in caught.value.message, (tamper.__name__, caught.value.message)


async def test_a_chain_recorded_out_of_rule_fails_at_that_step(node: Node) -> None:
    await store_rule(node, on_violation="record-and-alert")
    who = await parties(node)
    await anchor(node, who.headers["factory"], body("manufactured"))
    status, _ = await anchor(node, who.headers["intruder"], body("inspected"))
    assert status == 201  # accepted, with an alert
    export = await exported(node, who.headers["factory"], 2)
    key, _ = await log_key(node)
    with pytest.raises(ExportBroken) as caught:
        verify_export(export, key)
    assert caught.value.step == 2 and "wrong_party" in caught.value.message


async def test_a_person_signed_hand_over_verifies_offline(node: Node) -> None:
    rule = parts_rule()
    rule["transitions"][3]["handover"]["receiver"] = ["person:alice"]
    await store_rule(node, transitions=rule["transitions"])
    who = await parties(node)
    await to_depot(node, who)
    handover = await open_handover(node, who, receiver="person:alice")
    await sign(node, who, "depot-3", handover)
    handovers = node.app[CUSTODY].handovers
    alice = Identity(kind="person", name="alice", roles=frozenset({"reader"}))
    bob = Identity(kind="person", name="bob", roles=frozenset({"reader"}))
    with pytest.raises(NotFound):
        await handovers.sign_as_person(bob, handover["handover"])  # not a party: nothing
    row = await handovers.sign_as_person(alice, handover["handover"])
    assert row.status == "anchored"
    export = await exported(node, who.headers["factory"], 4)
    assert export["holder"] == "person:alice" and export["state"] == "in-transit"
    key, _ = await log_key(node)
    assert verify_export(export, key).state == "in-transit"
    export["handovers"][0]["signatures"]["receiver"]["party"] = "person:bob"
    with pytest.raises(ExportBroken) as caught:
        verify_export(export, key)
    assert caught.value.step == 4 and "two signatures" in caught.value.message


MALFORMED: list[Any] = [
    None,
    [],
    {"format": "sekisho.custody.export/v1"},
    {"format": "sekisho.custody.export/v1", "owner": "o", "subject": "s", "links": [1]},
    {"format": "sekisho.custody.export/v1", "owner": "o", "subject": "s", "links": "abc"},
    {"format": "sekisho.custody.export/v1", "owner": "o", "subject": "s", "rules": [[]]},
    {
        "format": "sekisho.custody.export/v1",
        "owner": "o",
        "subject": "s",
        "handovers": [7],
        "links": [{"entry": "{}", "receipt": "x", "opening": {}}],
    },
    {
        "format": "sekisho.custody.export/v1",
        "owner": "o",
        "subject": "s",
        "links": [{"entry": 5, "metadata": None}],
    },
]


def test_malformed_exports_are_refused_not_crashed_on() -> None:
    key = LogKey("sekisho.example/n1", bytes(32), "sekisho.example/n1")
    for export in MALFORMED:
        with pytest.raises(ExportBroken):
            verify_export(export, key)
