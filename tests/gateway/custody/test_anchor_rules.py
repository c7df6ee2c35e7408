"""Custody rules at anchor time: allowed, refused (ledgered), record-and-alert, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import gateway.signing.anchors as anchors_module
from gateway.app_keys import LEDGER, SIGNING
from gateway.custody import guard
from gateway.custody.alerts import check_overdue
from gateway.custody.models import CustodyAlert
from gateway.custody.store import RuleVersion
from gateway.errors import LedgerRolledBack
from gateway.signing.models import AnchorRecord
from tests.gateway.custody.chains import SUBJECT, anchor, body, parties, store_rule
from tests.gateway.signing.api_node import Node

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


async def test_allowed_links_carry_their_rule_and_refused_ones_are_ledgered(node: Node) -> None:
    rule = await store_rule(node)
    who = await parties(node)
    status, first = await anchor(node, who.headers["factory"], body("manufactured"))
    assert status == 201 and (first["rule"], first["rule_version"]) == ("spare-parts", 1)

    status, refused = await anchor(node, who.headers["intruder"], body("inspected"))
    assert status == 409 and refused["error"] == "custody_wrong_party"
    assert "spare-parts v1" in refused["message"]
    status, skipped = await anchor(node, who.headers["depot-3"], body("depot"))
    assert status == 409 and skipped["error"] == "custody_transition_not_allowed"
    status, bare = await anchor(node, who.headers["inspector"], body(None))
    assert status == 409 and bare["error"] == "custody_missing_state"

    status, second = await anchor(node, who.headers["inspector"], body("inspected"))
    assert status == 201 and second["sequence"] == 2 and second["previous"] == first["leaf_hash"]
    assert await AnchorRecord.filter(owner="factory").count() == 2  # refusals wrote no link

    refusals = await node.entries("custody.refused")
    assert [(e["code"], e["client"], e["sequence"]) for e in refusals] == [
        ("wrong_party", "intruder", 2),
        ("transition_not_allowed", "depot-3", 2),
        ("missing_state", "inspector", 2),
    ]
    assert {e["rule"] for e in refusals} == {rule.name} and refusals[0]["owner"] == "factory"
    [changed] = await node.entries("custody.rule_changed")
    assert changed["rule_sha256"] == rule.row.sha256 and changed["version"] == 1
    opened = await node.entries("record.anchored")
    assert [e.get("rule_version") for e in opened] == [1, 1]


async def test_subjects_no_rule_names_are_not_checked(node: Node) -> None:
    await store_rule(node)
    who = await parties(node)
    payload = {**body(None), "subject": "drone:UAV-17"}
    status, link = await anchor(node, who.headers["factory"], payload)
    assert status == 201 and link["rule"] is None


async def test_record_and_alert_accepts_and_raises_an_alert(node: Node) -> None:
    await store_rule(node, on_violation="record-and-alert")
    who = await parties(node)
    await anchor(node, who.headers["factory"], body("manufactured"))
    status, link = await anchor(node, who.headers["intruder"], body("inspected"))
    assert status == 201 and link["sequence"] == 2
    [alert] = await node.entries("alert.raised")
    assert alert["alert"] == "custody.out_of_rule" and alert["detail_code"] == "wrong_party"
    assert alert["record"] == link["record"] and alert["rule"] == "spare-parts"
    assert await CustodyAlert.filter(record=link["record"], code="wrong_party").exists()
    # a hand-over transition is never recorded without both signatures, even so
    await anchor(node, who.headers["depot-3"], body("depot"))
    status, unsigned = await anchor(node, who.headers["depot-3"], body("in-transit"))
    assert status == 409 and unsigned["error"] == "custody_handover_required"


async def test_timeouts_and_overdue_alerts_follow_the_injected_clock(node: Node) -> None:
    await store_rule(node)
    who = await parties(node)
    anchors = node.app[SIGNING].anchors
    anchors.clock = lambda: T0
    await anchor(node, who.headers["factory"], body("manufactured"))
    anchors.clock = lambda: T0 + timedelta(days=7, seconds=1)  # manufactured allows 7d
    status, late = await anchor(node, who.headers["inspector"], body("inspected"))
    assert status == 409 and late["error"] == "custody_out_of_time"

    ledger = node.app[LEDGER]
    assert await check_overdue(ledger, T0 + timedelta(days=6)) == []
    [raised] = await check_overdue(ledger, T0 + timedelta(days=8))
    assert raised.code == "overdue"
    assert await check_overdue(ledger, T0 + timedelta(days=9)) == []  # once per link
    [entry] = await node.entries("alert.raised")
    assert entry["alert"] == "custody.overdue" and entry["ts"].startswith("2026-11-09")

    anchors.clock = lambda: T0 + timedelta(days=6)  # in time (the clock may even go back)
    status, link = await anchor(node, who.headers["inspector"], body("inspected"))
    assert status == 201 and link["entry"].find('"ts":"2026-11-07T08:00:00.000Z"') > 0
    views = await node.client.get(
        "/api/v1/custody/chains",
        params={"subject": SUBJECT, "owner": "factory"},
        headers=who.headers["inspector"],
    )
    chain = await views.json()
    assert chain["state"] == "inspected" and len(chain["alerts"]) == 1


async def test_a_rule_added_while_a_link_is_decided_is_applied_to_it(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link is checked against the rules current when it is written: a rule stored after
    the link's decision but before its write makes the link be decided again."""
    who = await parties(node)
    decided = guard.decide
    added: list[RuleVersion] = []

    async def decide_then_add_a_rule(**kwargs: Any) -> Any:
        decision = await decided(**kwargs)
        if not added:
            added.append(await store_rule(node))  # lands between decision and write
        return decision

    monkeypatch.setattr(anchors_module, "decide", decide_then_add_a_rule)
    status, refused = await anchor(node, who.headers["intruder"], body("inspected"))
    assert status == 409 and refused["error"] == "custody_transition_not_allowed"
    assert await AnchorRecord.all().count() == 0
    assert await node.entries("record.anchored") == []
    [refusal] = await node.entries("custody.refused")
    assert (refusal["rule"], refusal["rule_version"]) == (added[0].name, 1)


async def test_a_rolled_back_ledger_takes_no_link(node: Node) -> None:
    """A link's entry is queued in its own transaction; a ledger found rolled back refuses
    it as it refuses appends: no link, no entry."""
    who = await parties(node)
    ledger = node.app[LEDGER]
    ledger.rollback = "the test rolled the ledger back"
    try:
        response = await node.client.post(
            "/api/v1/anchors", json=body("manufactured"), headers=who.headers["factory"]
        )
        assert response.status == 503
        assert (await response.json())["error"] == "ledger_rolled_back"
    finally:
        ledger.rollback = None
    assert await AnchorRecord.all().count() == 0
    assert await node.entries("record.anchored") == []


async def test_a_rolled_back_ledger_takes_no_overdue_alert(node: Node) -> None:
    """The overdue sweep queues its alerts in its own transaction; a ledger found rolled
    back refuses them (the sweep tries again next round): no alert row, no entry."""
    await store_rule(node)
    who = await parties(node)
    node.app[SIGNING].anchors.clock = lambda: T0
    await anchor(node, who.headers["factory"], body("manufactured"))
    ledger = node.app[LEDGER]
    ledger.rollback = "the test rolled the ledger back"
    try:
        with pytest.raises(LedgerRolledBack):
            await check_overdue(ledger, T0 + timedelta(days=8))
    finally:
        ledger.rollback = None
    assert await CustodyAlert.all().count() == 0
    assert await node.entries("alert.raised") == []
