"""The officers' custody page in a real browser (Debian Chromium via Playwright) on ``sekisho
serve``: a chain as a timeline with its rule, state, holder, pending hand-over and alert; the
rule's out-of-rule items; CSV and JSON exports, the JSON re-verified by ``sekisho custody verify``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.gateway.custody.test_rules import parts_rule
from tests.gateway.faults.client import call_json
from tests.nodes import run_cli, running_node
from tests.web.browser import (
    browser,
    console_errors,
    need_browser,
    new_page,
    passwords_from,
    shoot,
    sign_in,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["browser"]
pytestmark = pytest.mark.slow
SUBJECT = "part:SN-4711-A"
CLIENTS = ("factory", "inspector", "intruder", "depot-3")


@dataclass
class Node:
    """The running node, its data directory and the demo officer's one-time password."""

    base: str
    data_dir: Path
    passwords: dict[str, str]
    tokens: dict[str, str]


def _token(output: str) -> str:
    return output.split("(shown once; store it now): ")[1].split()[0]


def _anchor(node: Node, client: str, state: str) -> dict[str, Any]:
    body = {
        "subject": SUBJECT,
        "owner": "factory",
        "kind": "part.custody",
        "digest": base64.b64encode(hashlib.sha256(state.encode()).digest()).decode(),
        "metadata": {"state": state},
    }
    status, link = call_json(
        "POST", f"{node.base}/api/v1/anchors?wait=true", node.tokens[client], body
    )
    assert status == 201, link
    return dict(link)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A demo node with the parts rule (record and alert) and its clients."""
    need_browser()
    folder = tmp_path_factory.mktemp("custody")
    data_dir = folder / "var"
    init = run_cli(["init", "--demo"], data_dir)
    assert init.returncode == 0, init.stderr
    rule_file = folder / "parts.json"
    rule = parts_rule(on_violation="record-and-alert")
    rule["transitions"][3]["handover"]["receiver"].append("person:alice")
    rule_file.write_text(json.dumps(rule))
    assert run_cli(["custody", "rules", "add", str(rule_file)], data_dir).returncode == 0
    tokens = {}
    for name in CLIENTS:
        scopes = ["--scopes", "anchor,sign", "--keys", "default"] if name == "depot-3" else []
        added = run_cli(["clients", "add", name, *(scopes or ["--scopes", "anchor"])], data_dir)
        assert added.returncode == 0, added.stderr
        tokens[name] = _token(added.stdout)
    writers = run_cli(
        ["clients", "set", "factory", "--chain-writers", "inspector,intruder,depot-3"], data_dir
    )
    assert writers.returncode == 0, writers.stderr
    with running_node(data_dir) as base:
        yield Node(base, data_dir, passwords_from(init.stdout), tokens)


def test_the_officer_follows_a_chain_and_exports_it(node: Node, browser: Browser) -> None:
    _anchor(node, "factory", "manufactured")
    _anchor(node, "inspector", "inspected")
    _anchor(node, "intruder", "depot")  # not the depot: recorded, with an alert
    status, pending = call_json(
        "POST",
        f"{node.base}/api/v1/custody/handovers",
        node.tokens["depot-3"],
        {
            "subject": SUBJECT,
            "owner": "factory",
            "kind": "part.custody",
            "digest": base64.b64encode(bytes(32)).decode(),
            "metadata": {"state": "in-transit"},
            "giver": "client:depot-3",
            "receiver": "client:carrier-7",
        },
    )
    assert status == 201, pending

    page = new_page(browser, node.base)
    sign_in(page, "olivia", node.passwords["olivia"])
    chosen = "olivia follows the parts"
    page.get_by_label("Current password").fill(node.passwords["olivia"])
    page.get_by_label("New password", exact=True).fill(chosen)
    page.get_by_label("New password again").fill(chosen)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password has been changed").wait_for()
    page.context.close()
    page = new_page(browser, node.base)  # a fresh page: its console holds this test's only
    sign_in(page, "olivia", chosen)
    page.get_by_role("link", name="Custody", exact=True).click()
    page.get_by_label("Owner (API client)").fill("factory")
    page.get_by_label("Subject").fill(SUBJECT)
    page.get_by_role("button", name="Show chain").click()

    assert page.locator("#current-state").inner_text() == "depot"
    assert page.locator("#holder").inner_text() == "client:intruder"
    pending_rows = page.locator("section[aria-labelledby=pending-h] tbody tr").all_inner_texts()
    assert len(pending_rows) == 1 and "client:carrier-7" in pending_rows[0], pending_rows
    assert "nobody yet" in pending_rows[0]
    alert_rows = page.locator("section[aria-labelledby=alerts-h] tbody tr").all_inner_texts()
    assert len(alert_rows) == 1 and "wrong_party" in alert_rows[0], alert_rows
    timeline = page.locator("table.timeline tbody tr").all_inner_texts()
    states = [row.split("\t")[3] for row in timeline if row.split("\t")[1] == "link"]
    assert states == ["manufactured", "inspected", "depot"], timeline
    shoot(page, "officer-custody-chain")

    with page.expect_download() as csv_info:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_info.value.path()).read_text())))
    assert [r["state"] for r in rows if r["what"] == "link"] == states
    with page.expect_download() as json_info:
        page.get_by_role("link", name="Export JSON").click()
    export_file = Path(json_info.value.path())
    assert json.loads(export_file.read_text())["subject"] == SUBJECT
    status, key = call_json("GET", f"{node.base}/api/v1/ledger/key")
    verified = run_cli(["custody", "verify", str(export_file), "--key", key["vkey"]], node.data_dir)
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "step 3 breaks rule spare-parts v1: wrong_party" in verified.stdout

    page.get_by_role("link", name="spare-parts").click()
    items = page.locator("section[aria-labelledby=items-h] tbody tr").all_inner_texts()
    assert len(items) == 1 and SUBJECT in items[0] and "wrong_party" in items[0], items
    shoot(page, "officer-custody-rule")
    assert console_errors(page) == []  # no CSP violation, no script error
    missing = page.goto("/officer/custody/chain?owner=factory&subject=part:none")
    assert missing is not None and missing.status == 404
    page.context.close()


def test_a_person_signs_a_hand_over_in_the_portal(node: Node, browser: Browser) -> None:
    payload = {
        "subject": SUBJECT,
        "owner": "factory",
        "kind": "part.custody",
        "digest": base64.b64encode(hashlib.sha256(b"to alice").digest()).decode(),
        "metadata": {"state": "in-transit"},
        "giver": "client:depot-3",
        "receiver": "person:alice",
    }
    status, handover = call_json(
        "POST", f"{node.base}/api/v1/custody/handovers", node.tokens["depot-3"], payload
    )
    assert status == 201, handover
    digest = base64.b64encode(bytes.fromhex(handover["sha256"])).decode()
    status, signed = call_json(
        "POST", f"{node.base}/api/v1/sign/default", node.tokens["depot-3"], {"digest": digest}
    )
    assert status == 200, signed
    status, half = call_json(
        "POST",
        f"{node.base}/api/v1/custody/handovers/{handover['handover']}/signatures",
        node.tokens["depot-3"],
        {"key": "default", "version": signed["version"], "signature": signed["signature"]},
    )
    assert status == 200 and half["status"] == "pending", half

    page = new_page(browser, node.base)
    sign_in(page, "alice", node.passwords["alice"])
    chosen = "alice receives the part"
    page.get_by_label("Current password").fill(node.passwords["alice"])
    page.get_by_label("New password", exact=True).fill(chosen)
    page.get_by_label("New password again").fill(chosen)
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password has been changed").wait_for()
    page.goto("/me/handovers")
    rows = page.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "client:depot-3" in rows[0] and "in-transit" in rows[0], rows
    page.get_by_role("button", name="Sign hand-over").click()
    page.get_by_text("the link is anchored").wait_for()
    assert page.locator("tbody tr").all_inner_texts() == ["No hand-over waits for you."]
    shoot(page, "person-handover-signed")
    page.context.close()

    status, chain = call_json(
        "GET",
        f"{node.base}/api/v1/custody/handovers/{handover['handover']}",
        node.tokens["depot-3"],
    )
    assert status == 200 and chain["status"] == "anchored"
    assert chain["signatures"]["receiver"]["party"] == "person:alice"
