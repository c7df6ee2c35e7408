"""The two-person rule through the API: at TOP SECRET, downgrade and destruction wait for a
second officer cleared for the document; nothing acts on the requester's word alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import build_app
from gateway.app_keys import DOCUMENTS
from gateway.auth.principals import Principal
from gateway.auth.tokens import issue_token
from gateway.bootstrap import initialise
from gateway.config import load_settings
from gateway.documents.approvals import two_person_rule
from gateway.documents.models import AccessEvent, ApprovalRequest, DocumentVersion
from gateway.errors import ConfigError
from gateway.policy.labels import Label, LevelScheme
from hsm import TokenConfig
from tests.gateway.app_fixtures import AppNode, node_settings
from tests.gateway.documents.test_api import upload
from tests.gateway.ledger_rows import ledger_entries

Headers = dict[str, str]
OFFICER = ("reader", "officer", "uploader")


@pytest.fixture
async def node(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
) -> AppNode:
    """A node where TOP SECRET documents need a second officer within 10 minutes."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    settings = node_settings(
        tmp_path / "var",
        token_config,
        SEKISHO_DOCUMENTS_TWO_PERSON_LEVELS="TOP SECRET",
        SEKISHO_DOCUMENTS_TWO_PERSON_WINDOW="600",
    )
    await initialise(settings)
    client = await aiohttp_client(build_app(settings))
    return AppNode(client, settings)


async def person(name: str, level: str = "TOP SECRET", roles: tuple[str, ...] = OFFICER) -> Headers:
    row = await Principal.create(
        username=name, level=level, compartments=[], nationality="USA", roles=list(roles)
    )
    return {"Authorization": f"Bearer {await issue_token(principal=row)}"}


async def test_downgrade_waits_for_a_second_officer(node: AppNode) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"kestrel")
    asked = await node.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "SECRET", "reason": "operation over"},
        headers=olivia,
    )
    assert asked.status == 202, await asked.text()
    request = (await asked.json())["approval"]
    assert (request["status"], request["new_label"]) == ("pending", "SECRET")
    assert await DocumentVersion.filter(document_id=doc).count() == 1  # nothing done yet

    again = await node.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "CONFIDENTIAL", "reason": "x"},
        headers=olivia,
    )
    assert (again.status, (await again.json())["error"]) == (409, "approval_pending")

    own = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=olivia)
    assert (own.status, (await own.json())["error"]) == (403, "own_request")

    listed = await (await node.client.get("/api/v1/approvals", headers=oscar)).json()
    assert [a["id"] for a in listed["approvals"]] == [request["id"]]
    done = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert done.status == 200, await done.text()
    body = await done.json()
    assert body["approval"]["status"] == "approved"
    assert body["document"]["label"] == "SECRET"
    twice = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert (twice.status, (await twice.json())["error"]) == (409, "approval_settled")

    [asked_entry] = await ledger_entries("approval.requested", request=request["id"])
    assert asked_entry["actor"] == "person:olivia" and asked_entry["action"] == "downgrade"
    [granted] = await ledger_entries("approval.granted", request=request["id"])
    assert granted["actor"] == "person:oscar"
    assert len(await ledger_entries("document.relabelled", document=doc)) == 1
    rows = await AccessEvent.filter(document_id=doc)
    actions = {(e.actor, e.action, e.outcome, e.reason) for e in rows}
    assert ("person:olivia", "request_downgrade", "granted", "granted") in actions
    assert ("person:olivia", "approve_downgrade", "denied", "own_request") in actions
    assert ("person:oscar", "approve_downgrade", "granted", "granted") in actions


async def test_destroy_cannot_bypass_and_refusal_keeps_the_document(node: AppNode) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"keep me")
    asked = await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)
    assert asked.status == 202
    request = (await asked.json())["approval"]
    content = await node.client.get(f"/api/v1/documents/{doc}/content", headers=olivia)
    assert await content.read() == b"keep me"
    refused = await node.client.post(f"/api/v1/approvals/{request['id']}/refuse", headers=oscar)
    assert refused.status == 200 and (await refused.json())["approval"]["status"] == "refused"
    late = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert late.status == 409
    content = await node.client.get(f"/api/v1/documents/{doc}/content", headers=olivia)
    assert await content.read() == b"keep me"
    [entry] = await ledger_entries("approval.refused", request=request["id"])
    assert (entry["actor"], entry["reason_code"]) == ("person:oscar", "refused")


async def test_below_the_rule_acts_at_once(node: AppNode) -> None:
    olivia = await person("olivia")
    doc = await upload(node, olivia, "SECRET", b"routine")
    gone = await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)
    assert (gone.status, await gone.json()) == (200, {"destroyed_versions": 1})


async def test_who_may_decide(node: AppNode) -> None:
    olivia = await person("olivia")
    low_officer = await person("sam", level="SECRET")
    reader = await person("rob", roles=("reader",))
    doc = await upload(node, olivia, "TOP SECRET", b"x")
    request = (await (await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)).json())[
        "approval"
    ]
    by_reader = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=reader)
    assert by_reader.status == 403
    by_low = await node.client.post(
        f"/api/v1/approvals/{request['id']}/approve", headers=low_officer
    )
    assert by_low.status == 404  # not cleared for the document: as if it did not exist
    listed = await (await node.client.get("/api/v1/approvals", headers=low_officer)).json()
    assert listed["approvals"] == []
    unknown = await node.client.post("/api/v1/approvals/nonsense/approve", headers=olivia)
    assert unknown.status == 404 and (await unknown.json())["error"] == "not_found"
    assert (await ApprovalRequest.get(id=request["id"])).status == "pending"


async def test_expiry_is_ledgered_once_and_closes_the_request(node: AppNode) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"x")
    request = (await (await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)).json())[
        "approval"
    ]
    past = datetime.now(UTC) - timedelta(seconds=1)
    await ApprovalRequest.filter(id=request["id"]).update(expires_at=past)
    book = node.client.app[DOCUMENTS].changes.book
    assert await book.expire_overdue() == 1
    assert await book.expire_overdue() == 0  # the sweep and lazy reads ledger it once
    late = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert (late.status, (await late.json())["error"]) == (409, "approval_settled")
    assert len(await ledger_entries("approval.expired", request=request["id"])) == 1
    content = await node.client.get(f"/api/v1/documents/{doc}/content", headers=olivia)
    assert await content.read() == b"x"


async def test_lazy_expiry_on_read(node: AppNode) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"x")
    request = (await (await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)).json())[
        "approval"
    ]
    await ApprovalRequest.filter(id=request["id"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    listed = await (await node.client.get("/api/v1/approvals", headers=oscar)).json()
    assert listed["approvals"] == []
    assert len(await ledger_entries("approval.expired", request=request["id"])) == 1
    # a new request may be made once the old one has expired
    again = await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)
    assert again.status == 202


async def test_stale_request_after_a_new_version(node: AppNode) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"v1")
    asked = await node.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "SECRET", "reason": "r"},
        headers=olivia,
    )
    request = (await asked.json())["approval"]
    newer = await node.client.post(f"/api/v1/documents/{doc}/versions", data=b"v2", headers=olivia)
    assert newer.status == 201, await newer.text()
    stale = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert (stale.status, (await stale.json())["error"]) == (409, "approval_stale")
    assert (await ApprovalRequest.get(id=request["id"])).status == "stale"
    [version] = [v for v in await DocumentVersion.filter(document_id=doc) if v.version == 2]
    assert version.label == "TOP SECRET"  # the downgrade did not act on v2


async def test_destroying_a_document_with_a_top_secret_version_needs_approval(
    node: AppNode,
) -> None:
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"old and secret")
    asked = await node.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "SECRET", "reason": "declassified"},
        headers=olivia,
    )
    request = (await asked.json())["approval"]
    done = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert done.status == 200
    # the current version is SECRET, but destruction would shred the TOP SECRET one too
    gone = await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)
    assert gone.status == 202, await gone.text()


@pytest.mark.parametrize(
    ("levels", "window", "message"),
    [
        ("COSMIC", "60", "COSMIC is not one of clearance.levels"),
        ("TOP SECRET", "0", "two_person_window"),
    ],
)
def test_bad_settings_are_named(levels: str, window: str, message: str) -> None:
    environ = {
        "SEKISHO_DOCUMENTS_TWO_PERSON_LEVELS": levels,
        "SEKISHO_DOCUMENTS_TWO_PERSON_WINDOW": window,
    }
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_the_rule_covers_the_lowest_level_named_and_above() -> None:
    scheme = LevelScheme()
    rule = two_person_rule(scheme, ("secret",), 60)
    assert [rule.applies(Label(level)) for level in scheme.levels] == [False, False, True, True]
    assert not two_person_rule(scheme, (), 60).applies(Label("TOP SECRET"))


async def test_an_approver_who_could_not_apply_the_new_label_leaves_it_pending(
    node: AppNode,
) -> None:
    fra = await Principal.create(
        username="francine", level="TOP SECRET", nationality="FRA", roles=list(OFFICER)
    )
    francine = {"Authorization": f"Bearer {await issue_token(principal=fra)}"}
    oscar = await person("oscar")  # USA
    doc = await upload(node, francine, "TOP SECRET", b"x")
    asked = await node.client.post(
        f"/api/v1/documents/{doc}/downgrade",
        json={"label": "SECRET//REL TO FRA", "reason": "to the French liaison"},
        headers=francine,
    )
    request = (await asked.json())["approval"]
    refused = await node.client.post(f"/api/v1/approvals/{request['id']}/approve", headers=oscar)
    assert refused.status == 403, await refused.text()
    assert (await ApprovalRequest.get(id=request["id"])).status == "pending"
    assert await ledger_entries("approval.granted", request=request["id"]) == []


async def test_a_refusal_does_not_tell_whether_the_rule_covers_a_hidden_document(
    node: AppNode,
) -> None:
    """A person who may not see a document is refused a downgrade or destruction of it in
    the trail exactly as for an id that never existed: the action is not recorded as a
    two-person request, which would tell the hidden document's level."""
    olivia = await person("olivia")
    low_officer = await person("lena", level="SECRET")
    hidden = await upload(node, olivia, "TOP SECRET", b"kestrel")
    missing = "0b8f6a52-8a1c-4a3e-9d55-5f1f3f0e0c11"
    for target in (hidden, missing):
        gone = await node.client.delete(f"/api/v1/documents/{target}", headers=low_officer)
        lowered = await node.client.post(
            f"/api/v1/documents/{target}/downgrade",
            json={"label": "CONFIDENTIAL", "reason": "operation over"},
            headers=low_officer,
        )
        assert (gone.status, lowered.status) == (404, 404)
    seen = {}
    for target in (hidden, missing):
        rows = await AccessEvent.filter(document_id=target, actor="person:lena")
        seen[target] = sorted((row.action, row.outcome) for row in rows)
    assert seen[hidden] == seen[missing] == [("destroy", "denied"), ("downgrade", "denied")]
