"""The admin accounts API: admin role only, validation, one ledger entry per change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.auth.models import SignInThrottle
from gateway.auth.throttle import millis
from gateway.auth.tokens import REFUSED_TOKEN
from tests.gateway.app_fixtures import AppNode, MakePerson
from tests.gateway.ledger_rows import ledger_entries, raw_ledger_bytes

USERS = "/api/v1/admin/users"


async def test_only_admins_may_use_it(app_node: AppNode, make_person: MakePerson) -> None:
    client = app_node.client
    reader = await make_person("rita")
    officer = await make_person("otto", roles=("officer", "reader"))
    boss = await make_person("boss", roles=("admin",))
    calls = [
        ("GET", USERS, None),
        ("POST", USERS, {"username": "x", "level": "SECRET"}),
        ("PATCH", USERS + "/rita", {"level": "TOP SECRET"}),
        ("POST", USERS + "/rita/disable", None),
        ("POST", USERS + "/rita/enable", None),
        ("POST", USERS + "/rita/unlock", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body)
        assert response.status == 401, (method, path)
        for headers in (reader, officer):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status == 403, (method, path)
            assert (await response.json())["error"] == "forbidden"
    response = await client.get(USERS, headers=boss)
    assert response.status == 200
    names = [u["username"] for u in (await response.json())["users"]]
    assert names == sorted(names) and {"admin", "boss", "otto", "rita"} <= set(names)
    assert await ledger_entries("principal.changed", principal="x") == []
    assert (await ledger_entries("principal.changed", principal="rita")) == []


async def test_create_change_disable_enable(app_node: AppNode, make_person: MakePerson) -> None:
    client = app_node.client
    boss = await make_person("boss", roles=("admin",))
    body = {
        "username": "ivy",
        "level": "confidential",
        "compartments": ["logistics"],
        "nationality": "fra",
        "roles": ["reader", "uploader"],
        "display_name": "Ivy Quartermaster",
    }
    response = await client.post(USERS, json=body, headers=boss)
    assert response.status == 201, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    created = await response.json()
    password = created["one_time_password"]
    assert created["user"]["level"] == "CONFIDENTIAL"
    assert created["user"]["compartments"] == ["LOGISTICS"]
    assert created["user"]["nationality"] == "FRA"
    assert "password_hash" not in created["user"]

    response = await client.post(USERS, json=body, headers=boss)
    assert response.status == 409

    response = await client.patch(
        USERS + "/ivy", json={"level": "SECRET", "roles": ["reader"]}, headers=boss
    )
    assert response.status == 200
    assert (await response.json())["changed"] == ["level", "roles"]
    response = await client.patch(USERS + "/ivy", json={"level": "secret"}, headers=boss)
    assert (await response.json())["changed"] == []

    response = await client.post(USERS + "/ivy/disable", headers=boss)
    assert (await response.json())["user"]["disabled"] is True
    response = await client.post(USERS + "/ivy/disable", headers=boss)
    assert (await response.json())["changed"] is False
    response = await client.post(USERS + "/ivy/enable", headers=boss)
    assert (await response.json())["changed"] is True

    entries = await ledger_entries("principal.changed", principal="ivy")
    assert [e["change"] for e in entries] == ["created", "updated", "disabled", "enabled"]
    assert {e["actor"] for e in entries} == {"person:boss"}
    assert {e["source"] for e in entries} == {"127.0.0.1"}
    raw = await raw_ledger_bytes()
    assert password.encode() not in raw and b"Quartermaster" not in raw


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", USERS, {"username": "ivy"}, 400, "username and level are required"),
        ("POST", USERS, {"username": "ivy", "level": "COSMIC"}, 400, "unknown classification"),
        ("POST", USERS, {"username": "ivy", "level": "SECRET", "rank": 1}, 400, "unknown field"),
        ("POST", USERS, {"username": "ivy", "level": "SECRET", "roles": "admin"}, 400, "list"),
        ("POST", USERS, ["ivy"], 400, "JSON object"),
        ("PATCH", USERS + "/ivy", {"level": "SECRET"}, 404, "no user 'ivy'"),
        ("PATCH", USERS + "/boss", {"nationality": "FRANCE"}, 400, "France is FRA"),
        ("PATCH", USERS + "/boss", {"nationality": "XXX"}, 400, "not an ISO 3166-1 alpha-3"),
        ("PATCH", USERS + "/boss", {"nationality": "GER"}, 400, "Germany is DEU"),
        ("PATCH", USERS + "/boss", {"nationality": "NATO"}, 400, "a coalition"),
        ("POST", USERS, {"username": "ivy", "level": "SECRET", "nationality": "ZZZ"}, 400, "ISO"),
        ("PATCH", USERS + "/boss", {"username": "root"}, 400, "unknown field"),
        ("POST", USERS + "/ivy/disable", None, 404, "no user 'ivy'"),
    ],
)
async def test_bad_requests(
    app_node: AppNode,
    make_person: MakePerson,
    method: str,
    path: str,
    body: object,
    status: int,
    fragment: str,
) -> None:
    boss = await make_person("boss", roles=("admin",))
    response = await app_node.client.request(method, path, json=body, headers=boss)
    assert response.status == status
    assert fragment in (await response.json())["message"]
    assert await ledger_entries("principal.changed", actor="person:boss") == []


async def test_a_disabled_persons_token_stops_working(
    app_node: AppNode, make_person: MakePerson
) -> None:
    boss = await make_person("boss", roles=("admin",))
    deputy = await make_person("deputy", roles=("admin",))
    assert (await app_node.client.get(USERS, headers=deputy)).status == 200
    response = await app_node.client.post(USERS + "/deputy/disable", headers=boss)
    assert response.status == 200
    response = await app_node.client.get(USERS, headers=deputy)
    assert response.status == 401
    assert (await response.json())["message"] == REFUSED_TOKEN  # the same for every refusal
    # Enabling the account again does not bring the token back: disabling revoked it.
    assert (await app_node.client.post(USERS + "/deputy/enable", headers=boss)).status == 200
    assert (await app_node.client.get(USERS, headers=deputy)).status == 401


async def test_a_name_no_account_can_have_is_a_404_not_a_500(
    app_node: AppNode, make_person: MakePerson
) -> None:
    boss = await make_person("boss", roles=("admin",))
    long_name, odd_name = "x" * 200, "T\u0331o invoke" * 30
    calls = [
        ("PATCH", f"{USERS}/{long_name}", {"level": "SECRET"}),
        ("POST", f"{USERS}/{long_name}/disable", None),
        ("POST", f"{USERS}/{odd_name}/enable", None),
    ]
    for method, path, body in calls:
        response = await app_node.client.request(method, path, json=body, headers=boss)
        assert response.status == 404, (path, await response.text())
        assert (await response.json())["error"]


async def test_unlock_ends_a_lock_out_once(app_node: AppNode, make_person: MakePerson) -> None:
    client = app_node.client
    boss = await make_person("boss", roles=("admin",))
    await make_person("rita")
    until = millis(datetime.now(UTC) + timedelta(minutes=10))
    await SignInThrottle.create(
        scope="account", subject="rita", failures=5, window_start=1, locked_until=until
    )
    response = await client.post(USERS + "/rita/unlock", headers=boss)
    assert response.status == 200, await response.text()
    assert (await response.json())["changed"] is True
    row = await SignInThrottle.get(scope="account", subject="rita")
    assert (row.failures, row.locked_until) == (0, 0)
    again = await client.post(USERS + "/rita/unlock", headers=boss)
    assert (await again.json())["changed"] is False
    entries = await ledger_entries("principal.changed", principal="rita")
    assert [(e["change"], e["fields"], e["actor"]) for e in entries] == [
        ("unlocked", ["lockout"], "person:boss")
    ]
    missing = await client.post(USERS + "/nobody/unlock", headers=boss)
    assert missing.status == 404 and (await missing.json())["error"]
