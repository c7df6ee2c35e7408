"""Managing custody rules: API (officers and admins) and CLI; every version ledgered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.app_keys import LEDGER
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from tests.gateway.custody.chains import anchor, body, parties
from tests.gateway.custody.test_rules import TOML_RULE, parts_rule
from tests.gateway.ledger_rows import ledger_entries
from tests.gateway.signing.api_node import Headers, Node
from tests.nodes import run_cli_beside

RULES = "/api/v1/custody/rules"


async def person(username: str, *roles: str) -> Headers:
    row = await Principal.create(
        username=username, level="SECRET", nationality="USA", roles=list(roles)
    )
    return {"Authorization": f"Bearer {await issue_token(principal=row)}"}


async def test_officers_add_versions_and_readers_may_not(node: Node) -> None:
    officer = await person("olga", "officer")
    reader = await person("rita", "reader")
    added = await node.client.post(RULES, json=parts_rule(), headers=officer)
    assert added.status == 201
    first: dict[str, Any] = await added.json()
    assert (first["name"], first["version"], first["actor"]) == ("spare-parts", 1, "person:olga")
    again = await node.client.post(
        RULES, json=parts_rule(on_violation="record-and-alert"), headers=officer
    )
    assert (await again.json())["version"] == 2
    toml = await node.client.post(
        RULES, data=TOML_RULE, headers={**officer, "Content-Type": "application/toml"}
    )
    assert toml.status == 201 and (await toml.json())["document"]["match"] == {"kind": "footage.*"}

    bad = await node.client.post(RULES, json=parts_rule(states=[]), headers=officer)
    assert bad.status == 400
    error = await bad.json()
    assert error["error"] == "bad_rule" and "states" in error["message"]
    broken = await node.client.post(
        RULES, data=b"{", headers={**officer, "Content-Type": "application/json"}
    )
    assert broken.status == 400
    assert (await node.client.post(RULES, json=parts_rule(), headers=reader)).status == 403
    who = await parties(node)
    assert (
        await node.client.post(RULES, json=parts_rule(), headers=who.headers["factory"])
    ).status == 403

    listed = await (await node.client.get(RULES, headers=officer)).json()
    assert [(r["name"], r["version"]) for r in listed["rules"]] == [
        ("footage", 1),
        ("spare-parts", 2),
    ]
    shown = await (await node.client.get(f"{RULES}/spare-parts", headers=officer)).json()
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert (await node.client.get(f"{RULES}/nope", headers=officer)).status == 404
    entries = await node.entries("custody.rule_changed")
    assert [(e["rule"], e["version"], e["actor"]) for e in entries] == [
        ("spare-parts", 1, "person:olga"),
        ("spare-parts", 2, "person:olga"),
        ("footage", 1, "person:olga"),
    ]
    assert entries[1]["rule_sha256"] == shown["versions"][1]["sha256"]

    # the newest version applies to the next anchor: version 2 records and alerts
    await anchor(node, who.headers["factory"], body("manufactured"))
    status, link = await anchor(node, who.headers["intruder"], body("inspected"))
    assert status == 201 and link["rule_version"] == 2
    items = await (await node.client.get(f"{RULES}/spare-parts/items", headers=officer)).json()
    assert [(i["owner"], i["state"], i["alerts"]) for i in items["items"]] == [
        ("factory", "inspected", ["wrong_party"])
    ]
    csv = await node.client.get(
        "/api/v1/custody/chains",
        headers=officer,
        params={"subject": body(None)["subject"], "owner": "factory", "format": "csv"},
    )
    text = await csv.text()
    assert csv.status == 200 and text.startswith("at,what,sequence,state,party,detail,record")
    assert "wrong_party" in text and text.count("\nlink") == 0 and ",link," in text
    views = await node.entries("oversight.viewed")
    assert {e["view"] for e in views} >= {"custody-rule", "custody-chain"}


@pytest.mark.slow  # runs the CLI
async def test_cli_rules_add_list_show(node: Node, tmp_path: Path) -> None:
    data = node.settings.data_dir
    rule_file = tmp_path / "parts.json"
    rule_file.write_text(json.dumps(parts_rule()))
    added = await run_cli_beside(["custody", "rules", "add", str(rule_file)], data)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("custody rule spare-parts version 1")
    toml_file = tmp_path / "footage.toml"
    toml_file.write_text(TOML_RULE)
    assert (await run_cli_beside(["custody", "rules", "add", str(toml_file)], data)).returncode == 0
    listing = await run_cli_beside(["custody", "rules", "list"], data)
    assert "spare-parts" in listing.stdout and "record-and-alert" in listing.stdout
    shown = json.loads(
        (await run_cli_beside(["custody", "rules", "show", "spare-parts"], data)).stdout
    )
    assert shown[0]["version"] == 1 and shown[0]["actor"].startswith("operator:")

    rule_file.write_text(json.dumps(parts_rule(name="Not A Name")))
    bad = await run_cli_beside(["custody", "rules", "add", str(rule_file)], data)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "sekisho: error: rule field name: String should match pattern '^[a-z][a-z0-9-]{0,63}$'"
    ]
    missing = await run_cli_beside(["custody", "rules", "show", "nope"], data)
    assert missing.returncode == 1 and "no custody rule named 'nope'" in missing.stderr


async def test_a_rolled_back_ledger_takes_no_rule(node: Node) -> None:
    """A rule's entry is queued in the rule's own transaction, not appended through the
    ledger service, and a ledger found rolled back still refuses it: no rule, no entry."""
    officer = await person("olga", "officer")
    ledger = node.app[LEDGER]
    ledger.rollback = "the test rolled the ledger back"
    try:
        refused = await node.client.post(RULES, json=parts_rule(), headers=officer)
        assert refused.status == 503
        assert (await refused.json())["error"] == "ledger_rolled_back"
    finally:
        ledger.rollback = None
    listed = await (await node.client.get(RULES, headers=officer)).json()
    assert listed["rules"] == []
    assert await ledger_entries("custody.rule_changed") == []
