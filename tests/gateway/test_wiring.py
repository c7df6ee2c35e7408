"""The composition root builds each service once; every path shares one decision point."""

from __future__ import annotations

from gateway.app_keys import ACCOUNTS, DOCUMENTS, POLICY, TRAIL
from tests.gateway.app_fixtures import AppNode, app_node

__all__ = ["app_node"]


async def test_one_decision_point_and_services_built_at_start(app_node: AppNode) -> None:
    app = app_node.client.app
    assert app[DOCUMENTS].context.pdp is app[POLICY]
    assert app[POLICY].scheme.levels == tuple(app_node.settings.clearance.levels)
    accounts, trail = app[ACCOUNTS], app[TRAIL]
    await app_node.client.get("/healthz")
    assert app[ACCOUNTS] is accounts
    assert app[TRAIL] is trail
