"""``/healthz`` and ``/readyz`` of a node: up, and ready once database and token answer.

Not-ready cases (token removed, PostgreSQL restarting) run on real processes in
tests/gateway/faults/. What a failing check found goes only to a credential that
may watch the node (as request and process metrics do); anyone else gets booleans.
"""

from __future__ import annotations

import json

import pytest

from gateway.app_keys import LEDGER, TOKEN
from gateway.auth.principals import ApiClient
from gateway.auth.tokens import issue_token
from gateway.health import http as health_http
from hsm import HsmError, TokenConfig
from tests.gateway.app_fixtures import AppNode, Headers, MakePerson


async def client_headers(*scopes: str) -> Headers:
    """Authorization headers of a new API client holding ``scopes``."""
    client = await ApiClient.create(name=f"c{await ApiClient.all().count()}", scopes=list(scopes))
    return {"Authorization": f"Bearer {await issue_token(client=client)}"}


async def test_a_running_node_is_live_and_ready(app_node: AppNode) -> None:
    live = await app_node.client.get("/healthz")
    assert live.status == 200
    assert await live.json() == {"status": "ok"}

    ready = await app_node.client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200, body
    assert ready.headers["Cache-Control"] == "no-store"
    assert body["ready"] is True
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["token"] == {"ok": True}
    assert body["checks"]["ledger"] == {"ok": True}  # the auditor's details: for watchers


async def test_readyz_details_only_for_who_may_watch_the_node(
    app_node: AppNode,
    make_person: MakePerson,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = app_node.client.app
    assert app is not None
    label, module = token_config.token_label or "sekisho", token_config.module_path
    token_gone = f"token {label!r} (module {module}) went away: CKR_TOKEN_NOT_PRESENT"
    bucket_gone = "bucket 'sekisho-docs' at https://minio.internal.example:9000 does not exist"
    rolled_back = "ledger rolled back: the token's checkpoint says 12 entries, the database 7"

    async def no_token(_label: str) -> None:
        raise HsmError(token_gone)

    async def no_bucket(_store: object) -> str:
        return bucket_gone

    async def no_database() -> bool:
        return False

    monkeypatch.setattr(app[TOKEN], "self_test", no_token)
    monkeypatch.setattr(health_http, "blob_store_problem", no_bucket)
    monkeypatch.setattr(health_http, "database_ready", no_database)
    monkeypatch.setattr(app[LEDGER], "rollback", rolled_back)
    details = (
        token_gone,
        label,
        module,
        "minio.internal.example",
        "sekisho-docs",
        "SELECT 1",
        "rolled back",
        '"error"',
        '"audit"',
    )
    failing = {"database": False, "token": False, "blobs": False, "ledger_history": False}

    anonymous: Headers = {}
    not_watching = {
        "anonymous": anonymous,
        "reader": await make_person("rita", roles=("reader", "uploader")),
        "officer": await make_person("otto", roles=("reader", "officer")),
        "signing client": await client_headers("sign", "verify", "anchor"),
    }
    for who, headers in not_watching.items():
        response = await app_node.client.get("/readyz", headers=headers)
        assert response.status == 503, who
        text = await response.text()
        for detail in details:
            assert detail not in text, (who, detail, text)
        body = json.loads(text)
        assert body["ready"] is False
        assert all(check == {"ok": check["ok"]} for check in body["checks"].values()), body
        assert all(isinstance(check["ok"], bool) for check in body["checks"].values()), body
        assert {name: body["checks"][name]["ok"] for name in failing} == failing, body
        assert body["checks"]["ledger"] == {"ok": True}, body  # tampering never blocks

    watching = {
        "admin": await make_person("ada", roles=("admin",)),
        "auditor": await make_person("aude", roles=("auditor",)),
        "metrics client": await client_headers("metrics"),
    }
    for who, headers in watching.items():
        response = await app_node.client.get("/readyz", headers=headers)
        assert response.status == 503, who
        body = await response.json()
        assert body["ready"] is False
        checks = body["checks"]
        assert {name: checks[name]["ok"] for name in failing} == failing, body
        assert checks["token"]["error"] == token_gone, who
        assert checks["blobs"]["error"] == bucket_gone, who
        assert checks["database"]["error"] == "no answer to SELECT 1", who
        assert rolled_back in checks["ledger_history"]["error"], who
        assert "audit" in checks["ledger"], who
