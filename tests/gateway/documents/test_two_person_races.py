"""Two-person changes on SQLite and PostgreSQL: of two identical requests at once one is
stored and ledgered (202), the other refused as already pending (409); an approval, a
downgrade's version and its relabel entry are stored together with their change or not
at all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gateway.documents import changes, writer
from gateway.documents.models import AccessEvent, ApprovalRequest, Document, DocumentVersion
from gateway.errors import LedgerRolledBack
from gateway.ledger import transactional
from hsm import TokenConfig
from tests.gateway.app_fixtures import AppNode, serve_node
from tests.gateway.documents.test_api import upload
from tests.gateway.documents.test_two_person import person
from tests.gateway.ledger_rows import ledger_entries


@pytest.fixture(params=["sqlite", "postgres"])
async def node(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[TestClient]],  # type: ignore[type-arg]
) -> AppNode:
    """A node (SQLite or PostgreSQL) where TOP SECRET documents need a second officer."""
    return await serve_node(
        request,
        tmp_path,
        token_config,
        monkeypatch,
        aiohttp_client,
        request.param,
        SEKISHO_DOCUMENTS_TWO_PERSON_LEVELS="TOP SECRET",
        SEKISHO_DOCUMENTS_TWO_PERSON_WINDOW="600",
    )


async def ask_for(node: AppNode, action: str, doc: str, headers: dict[str, str]) -> ClientResponse:
    """Ask to downgrade a TOP SECRET document to SECRET, or to destroy it."""
    if action == "downgrade":
        return await node.client.post(
            f"/api/v1/documents/{doc}/downgrade",
            json={"label": "SECRET", "reason": "operation over"},
            headers=headers,
        )
    return await node.client.delete(f"/api/v1/documents/{doc}", headers=headers)


@pytest.mark.parametrize("action", ["downgrade", "destroy"])
async def test_identical_requests_at_once_make_one_request(node: AppNode, action: str) -> None:
    olivia = await person("olivia")
    doc = await upload(node, olivia, "TOP SECRET", b"kestrel")

    async def ask() -> tuple[int, dict[str, object]]:
        response = await ask_for(node, action, doc, olivia)
        return response.status, await response.json()

    answers = await asyncio.gather(ask(), ask())

    assert sorted(status for status, _ in answers) == [202, 409]
    [refused] = [body for status, body in answers if status == 409]
    assert refused["error"] == "approval_pending"
    [request] = await ApprovalRequest.filter(document_id=doc, action=action)
    assert request.status == "pending"
    assert len(await ledger_entries("approval.requested", document=doc)) == 1
    trail = {(e.action, e.outcome, e.reason) for e in await AccessEvent.filter(document_id=doc)}
    assert (f"request_{action}", "denied", "approval_pending") in trail


def refuse_entries(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    """The ledger stops taking entries where ``module`` queues them in a transaction."""

    def refused(*_: object) -> list[int]:
        raise LedgerRolledBack("the ledger is halted (test)")

    async def refused_async(*_: object) -> list[int]:
        refused()
        return []

    for name, fake in (("queue_entries", refused_async), ("queue_on_sqlite", refused)):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, fake)


@pytest.mark.parametrize("action", ["downgrade", "destroy"])
async def test_an_approval_is_stored_only_with_the_change_it_approves(
    node: AppNode, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """When the approved change fails (here its own ledger entry cannot be written), the
    approval is not stored either: the request stays pending, no ``approval.granted``
    entry says otherwise, and a later approval carries the change out."""
    olivia, oscar = await person("olivia"), await person("oscar")
    doc = await upload(node, olivia, "TOP SECRET", b"kestrel")
    request = (await (await ask_for(node, action, doc, olivia)).json())["approval"]
    approve = f"/api/v1/approvals/{request['id']}/approve"

    refuse_entries(monkeypatch, writer if action == "downgrade" else changes)
    failed = await node.client.post(approve, headers=oscar)
    assert failed.status == 503, await failed.text()
    assert (await ApprovalRequest.get(id=request["id"])).status == "pending"
    assert await ledger_entries("approval.granted", request=request["id"]) == []
    assert await DocumentVersion.filter(document_id=doc).count() == 1
    assert not (await Document.get(id=doc)).destroyed
    assert await DocumentVersion.filter(document_id=doc, wrapped_key__isnull=True).count() == 0

    monkeypatch.undo()
    done = await node.client.post(approve, headers=oscar)
    assert done.status == 200, await done.text()
    assert (await ApprovalRequest.get(id=request["id"])).status == "approved"
    assert len(await ledger_entries("approval.granted", request=request["id"])) == 1
    if action == "downgrade":
        assert len(await ledger_entries("document.relabelled", document=doc, version=2)) == 1
    else:
        assert (await Document.get(id=doc)).destroyed


async def test_a_downgrade_is_stored_only_with_its_relabel_entry(
    node: AppNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A downgrade's new version and its ``document.relabelled`` entry are one write: when
    the entry cannot be written, no version under the lower label exists either."""
    olivia = await person("olivia")
    doc = await upload(node, olivia, "SECRET", b"below the rule")
    refuse_entries(monkeypatch, transactional)
    downgrade = f"/api/v1/documents/{doc}/downgrade"
    body = {"label": "CONFIDENTIAL", "reason": "operation over"}

    failed = await node.client.post(downgrade, json=body, headers=olivia)
    assert failed.status == 503, await failed.text()
    assert [v.version for v in await DocumentVersion.filter(document_id=doc)] == [1]
    assert (await Document.get(id=doc)).label == "SECRET"
    assert await ledger_entries("document.registered", document=doc, version=2) == []

    monkeypatch.undo()
    done = await node.client.post(downgrade, json=body, headers=olivia)
    assert done.status in (200, 201), await done.text()
    assert (await Document.get(id=doc)).label == "CONFIDENTIAL"
    assert len(await ledger_entries("document.registered", document=doc, version=2)) == 1
    assert len(await ledger_entries("document.relabelled", document=doc, version=2)) == 1
