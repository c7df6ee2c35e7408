"""Who may call what: bearer tokens, scopes, key allow-lists, revocation, rate limits."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.auth.principals import ApiClient, Principal
from gateway.auth.ratelimit import RateLimiter
from gateway.auth.tokens import issue_token
from gateway.errors import BadRequest, TooManyRequests
from gateway.signing.clients import ClientSpec
from hsm import KeyAlgorithm
from tests.gateway.signing.api_node import Headers, Node

DIGEST = {"digest": base64.b64encode(hashlib.sha256(b"x").digest()).decode()}


async def status_and_error(node: Node, path: str, headers: Headers) -> tuple[int, str]:
    response = await node.client.post(path, json=DIGEST, headers=headers)
    body = await response.json()
    assert set(body) >= {"error", "message"} or response.status == 200
    return response.status, body.get("error", "")


async def test_credentials_are_required_and_checked(node: Node) -> None:
    assert await status_and_error(node, "/api/v1/sign/default", {}) == (401, "unauthenticated")
    for header in ("Bearer sks_not-a-real-token", "Basic dXNlcjpwdw==", "Bearer "):
        status, _ = await status_and_error(node, "/api/v1/sign/default", {"Authorization": header})
        assert status == 401
    assert (await node.client.get("/api/v1/keys")).status == 401
    assert (await node.client.get("/api/v1/ca.pem")).status == 200  # public


async def test_people_cannot_use_the_signing_api(node: Node) -> None:
    person = await Principal.create(username="alice", level="SECRET", roles=["reader"])
    headers = {"Authorization": f"Bearer {await issue_token(principal=person)}"}
    assert await status_and_error(node, "/api/v1/sign/default", headers) == (403, "forbidden")
    keys = await node.client.get("/api/v1/keys", headers=headers)
    assert keys.status == 200  # public keys and certificates are not secret


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/api/v1/sign/default", "sign"),
        ("/api/v1/verify/default", "verify"),
        ("/api/v1/cms/default", "cms"),
        ("/api/v1/anchors", "anchor"),
    ],
)
async def test_each_endpoint_needs_its_scope(node: Node, path: str, scope: str) -> None:
    others = [s for s in ("sign", "verify", "cms", "timestamp", "anchor") if s != scope]
    headers = await node.add_client(scopes=others)
    status, error = await status_and_error(node, path, headers)
    assert (status, error) == (403, "forbidden")
    timestamp = await node.client.post(
        "/api/v1/timestamp",
        data=b"\x30\x00",
        headers={
            **await node.add_client(scopes=["sign"]),
            "Content-Type": "application/timestamp-query",
        },
    )
    assert timestamp.status == 403


async def test_key_allow_list(node: Node) -> None:
    other = await node.create_key(KeyAlgorithm.EC_P256)
    headers = await node.add_client(keys=["default"])
    for path in (f"/api/v1/sign/{other.name}", f"/api/v1/cms/{other.name}"):
        assert await status_and_error(node, path, headers) == (403, "forbidden")
    # an unknown key answers like a forbidden one, so names cannot be probed
    assert await status_and_error(node, "/api/v1/sign/no-such-key", headers) == (403, "forbidden")
    listed = await (await node.client.get("/api/v1/keys", headers=headers)).json()
    assert {k["name"] for k in listed["keys"]} == {"default", "tsa"}
    hidden = await node.client.get(f"/api/v1/keys/{other.name}", headers=headers)
    assert hidden.status == 404
    unknown = await node.client.get("/api/v1/keys/nope", headers=headers)
    assert (unknown.status, (await unknown.json())["error"]) == (404, "no_such_key")


async def test_a_time_stamping_key_never_signs_digests(node: Node) -> None:
    headers = await node.add_client(keys=["default"], name="sneaky")
    await ApiClient.filter(name="sneaky").update(keys=["default", "tsa"])
    status, error = await status_and_error(node, "/api/v1/sign/tsa", headers)
    assert (status, error) == (403, "wrong_key_purpose")
    status, error = await status_and_error(node, "/api/v1/cms/tsa", headers)
    assert (status, error) == (403, "wrong_key_purpose")


async def test_revoked_client_and_revoked_token_get_401(node: Node) -> None:
    _, service = node.managers()
    headers = await node.add_client(name="workflow")
    assert (await status_and_error(node, "/api/v1/sign/default", headers))[0] == 200
    second = await service.issue_token("workflow", "rotation")
    second_headers = {"Authorization": f"Bearer {second}"}
    assert (await status_and_error(node, "/api/v1/sign/default", second_headers))[0] == 200
    assert await service.revoke_token("workflow", second[:12]) is True
    assert (await status_and_error(node, "/api/v1/sign/default", second_headers))[0] == 401
    assert (await status_and_error(node, "/api/v1/sign/default", headers))[0] == 200
    assert await service.revoke("workflow") is True
    assert await service.revoke("workflow") is False
    assert await status_and_error(node, "/api/v1/sign/default", headers) == (401, "unauthenticated")
    changes = [
        e["change"] for e in await node.entries("client.changed") if e["client"] == "workflow"
    ]
    assert changes == ["created", "token_issued", "token_revoked", "revoked"]


async def test_rate_limit_answers_429_with_retry_after(node: Node) -> None:
    headers = await node.add_client(rate=3)
    for _ in range(3):
        assert (await status_and_error(node, "/api/v1/sign/default", headers))[0] == 200
    response = await node.client.post("/api/v1/sign/default", json=DIGEST, headers=headers)
    assert response.status == 429
    assert (await response.json())["error"] == "rate_limited"
    assert response.headers["Retry-After"] == "20"  # 3 per minute: one every 20 s
    other = await node.add_client(rate=3)  # buckets are per client
    assert (await status_and_error(node, "/api/v1/sign/default", other))[0] == 200


async def test_a_batch_costs_one_unit_per_item(node: Node) -> None:
    headers = await node.add_client(rate=4)
    batch = {"batch": [DIGEST] * 4}
    ok = await node.client.post("/api/v1/sign/default", json=batch, headers=headers)
    assert ok.status == 200
    limited = await node.client.post("/api/v1/sign/default", json=DIGEST, headers=headers)
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) == 15


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(60):
        limiter.charge("a", 60)
    with pytest.raises(TooManyRequests) as raised:
        limiter.charge("a", 60)
    assert raised.value.retry_after == 1
    now[0] += 1.0
    limiter.charge("a", 60)
    with pytest.raises(TooManyRequests):
        limiter.charge("a", 60)
    now[0] += 120.0  # never more than one minute's burst
    for _ in range(60):
        limiter.charge("a", 60)
    with pytest.raises(TooManyRequests):
        limiter.charge("a", 60)
    limiter.charge("a", 0)  # 0 means unlimited
    limiter.charge("b", 10, cost=50)  # a cost above the bucket costs the whole bucket
    with pytest.raises(TooManyRequests) as empty:
        limiter.charge("b", 10)
    assert empty.value.retry_after == 6


async def test_client_changes_are_checked_and_ledgered(node: Node) -> None:
    other = await node.create_key(KeyAlgorithm.ED25519)
    _, service = node.managers()
    headers = await node.add_client(scopes=["sign"], keys=["default"], name="workflow-2", rate=10)
    client, changed = await service.update(
        "workflow-2",
        ClientSpec(scopes=("sign", "cms"), keys=("default", other.name), rate_per_minute=0),
    )
    assert changed == ["keys", "rate_per_minute", "scopes"]
    assert (client.scopes, client.keys) == (["sign", "cms"], ["default", other.name])
    assert (await service.update("workflow-2", ClientSpec(rate_per_minute=0)))[1] == []
    cms = await node.client.post("/api/v1/cms/default", json=DIGEST, headers=headers)
    assert cms.status == 200
    assert await status_and_error(node, f"/api/v1/sign/{other.name}", headers) == (200, "")
    for spec, message in (
        (ClientSpec(scopes=("fly",)), "unknown: fly"),
        (ClientSpec(keys=("tsa",)), "time-stamping key"),
        (ClientSpec(keys=("nope",)), "no signing key"),
        (ClientSpec(scopes=("anchor",), keys=("default",)), "keys only matter"),
        (ClientSpec(rate_per_minute=-1), "rate must be"),
        (ClientSpec(cert_fingerprint="abc"), "64 hex digits"),
    ):
        with pytest.raises(BadRequest, match=message):
            await service.update("workflow-2", spec)
    entries = [e for e in await node.entries("client.changed") if e["client"] == "workflow-2"]
    assert [e["change"] for e in entries] == ["created", "updated"]
    assert entries[1]["fields"] == ["keys", "rate_per_minute", "scopes"]
    assert entries[1]["scopes"] == ["sign", "cms"] and entries[1]["rate_per_minute"] == 0
    assert all("sks_" not in str(e.get("token", "")) or len(e["token"]) == 12 for e in entries)
