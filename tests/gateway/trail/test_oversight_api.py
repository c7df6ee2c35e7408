"""``GET /api/v1/oversight`` on PostgreSQL: who looked at the trail, with the filters used."""

from __future__ import annotations

from tests.gateway.ledger.conftest import MakeNode, make_node

__all__ = ["make_node"]


async def test_who_looked_at_the_trail_on_postgres(
    make_node: MakeNode, pg_database_url: str
) -> None:
    node = await make_node(pg_database_url)
    officer = {"Authorization": f"Bearer {await node.person_token('officer')}"}
    auditor = {"Authorization": f"Bearer {await node.person_token('auditor')}"}
    await node.get_json("/api/v1/trail?outcome=denied&person=alice", headers=officer)
    await node.get_json("/api/v1/trail?action=content", headers=officer)

    seen = await node.get_json("/api/v1/oversight?view=trail&limit=1", headers=auditor)
    assert [a["filters"] for a in seen["actions"]] == [{"action": "content", "format": "json"}]
    older = await node.get_json(
        f"/api/v1/oversight?view=trail&limit=1&cursor={seen['next_cursor']}", headers=auditor
    )
    assert older["actions"][0]["filters"] == {
        "actor": "person:alice",
        "format": "json",
        "outcome": "denied",
    }
    assert older["actions"][0]["actor"].endswith("-officer")
    looks = await node.get_json("/api/v1/oversight?view=oversight", headers=officer)
    assert len(looks["actions"]) == 3  # the auditor's two pages and this call
    assert {a["actor"].rsplit("-", 1)[1] for a in looks["actions"]} == {"auditor", "officer"}
