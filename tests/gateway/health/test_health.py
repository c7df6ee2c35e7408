"""``/healthz`` and ``/readyz`` of a node: up, and ready once database and token answer.

Not-ready cases (token removed, PostgreSQL restarting) run on real processes in
tests/gateway/faults/.
"""

from __future__ import annotations

from tests.gateway.app_fixtures import AppNode


async def test_a_running_node_is_live_and_ready(app_node: AppNode) -> None:
    live = await app_node.client.get("/healthz")
    assert live.status == 200
    assert await live.json() == {"status": "ok"}

    ready = await app_node.client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200, body
    assert body["ready"] is True
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["token"] == {"ok": True}
