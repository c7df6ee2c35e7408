"""Two identical two-person requests at once, on SQLite and PostgreSQL: one is stored and
ledgered (202), the other is refused as already pending (409); never two requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.documents.models import AccessEvent, ApprovalRequest
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


@pytest.mark.parametrize("action", ["downgrade", "destroy"])
async def test_identical_requests_at_once_make_one_request(node: AppNode, action: str) -> None:
    olivia = await person("olivia")
    doc = await upload(node, olivia, "TOP SECRET", b"kestrel")

    async def ask() -> tuple[int, dict[str, object]]:
        if action == "downgrade":
            response = await node.client.post(
                f"/api/v1/documents/{doc}/downgrade",
                json={"label": "SECRET", "reason": "operation over"},
                headers=olivia,
            )
        else:
            response = await node.client.delete(f"/api/v1/documents/{doc}", headers=olivia)
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
