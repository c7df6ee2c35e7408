"""Concurrent anchors on one subject: the rule sees a consistent head (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gateway.app import build_app
from gateway.app_keys import LEDGER, SIGNING
from gateway.auth.identity import Identity
from gateway.bootstrap import initialise
from gateway.custody.guard import CustodyRefused
from gateway.signing.anchors import AnchorService, anchor_request
from gateway.signing.models import AnchorRecord
from hsm import TokenConfig
from tests.gateway.custody.chains import anchor, body, parties, store_rule
from tests.gateway.signing.api_node import Client, Node, node_settings


@pytest.fixture(params=["sqlite", "postgres"])
async def any_node(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Node:
    """A node on SQLite or on a throwaway PostgreSQL database."""
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    extra = {}
    if request.param == "postgres":
        extra["SEKISHO_DATABASE_URL"] = str(request.getfixturevalue("pg_database_url"))
    settings = node_settings(tmp_path / "var", token_config, **extra)
    await initialise(settings)
    app = build_app(settings)
    return Node(await aiohttp_client(app), settings, app)


async def test_concurrent_anchors_see_one_head(any_node: Node) -> None:
    node = any_node
    await store_rule(node)
    who = await parties(node)
    await anchor(node, who.headers["factory"], body("manufactured"))
    # eight inspectors race to record "inspected": the rule allows it once (inspected ->
    # inspected is no transition), so exactly one may win whatever the interleaving
    results = await asyncio.gather(
        *(anchor(node, who.headers["inspector"], body("inspected", bytes([i]))) for i in range(8))
    )
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: 7}
    assert {r["error"] for s, r in results if s == 409} == {"custody_transition_not_allowed"}
    [winner] = [r for s, r in results if s == 201]
    assert winner["sequence"] == 2
    refusals = await node.entries("custody.refused")
    assert len(refusals) == 7 and {e["sequence"] for e in refusals} == {3}
    chain = await (
        await node.client.get(
            "/api/v1/anchors",
            params={"subject": body(None)["subject"], "owner": "factory"},
            headers=who.headers["factory"],
        )
    ).json()
    assert [link["metadata"]["state"] for link in chain["links"]] == ["manufactured", "inspected"]


async def test_writers_without_a_shared_lock_still_see_one_head(any_node: Node) -> None:
    """Two anchoring services (as two gateway processes have) share only the database."""
    node = any_node
    await store_rule(node)
    await parties(node)
    services = [node.app[SIGNING].anchors, AnchorService(node.app[LEDGER])]
    factory = Identity(kind="client", name="factory", scopes=frozenset({"anchor"}))
    inspector = Identity(kind="client", name="inspector", scopes=frozenset({"anchor"}))
    await services[1].anchor(factory, anchor_request(body("manufactured")))

    async def attempt(number: int) -> str:
        try:
            await services[number % 2].anchor(
                inspector, anchor_request(body("inspected", bytes([number])))
            )
        except CustodyRefused as refused:
            return refused.code
        return "anchored"

    outcomes = Counter(await asyncio.gather(*(attempt(i) for i in range(8))))
    assert outcomes == {"anchored": 1, "custody_transition_not_allowed": 7}
    states = [
        row.metadata["state"]
        for row in await AnchorRecord.filter(owner="factory").order_by("sequence")
    ]
    assert states == ["manufactured", "inspected"]
