"""Every class of bad input gets a clear 4xx JSON error, never a 500."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.signing import http as signing_http
from hsm import TokenConfig
from tests.gateway.signing.api_node import Client, Headers, Node, node_settings, start_node

SHA256 = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
SHA512 = base64.b64encode(hashlib.sha512(b"x").digest()).decode()
JSON = "application/json"

SIGN_CASES: list[tuple[str, bytes | Any, str, int, str]] = [
    # (id, body (bytes are sent as-is), content type, status, error code)
    ("not json", b"{nope", JSON, 400, "bad_json"),
    ("nan", b'{"digest": NaN}', JSON, 400, "bad_json"),
    ("not utf-8", b'{"data": "\xff"}', JSON, 400, "bad_json"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, JSON, 400, "bad_json"),
    ("array", [SHA256], JSON, 400, "bad_json"),
    ("form", b"digest=abc", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("empty object", {}, JSON, 400, "missing_input"),
    ("both inputs", {"digest": SHA256, "data": "eA=="}, JSON, 400, "missing_input"),
    ("short digest", {"digest": "AAAA"}, JSON, 400, "bad_digest_length"),
    ("sha512 digest as sha256", {"digest": SHA512}, JSON, 400, "bad_digest_length"),
    (
        "sha256 digest as sha384",
        {"digest": SHA256, "hash": "sha384"},
        JSON,
        400,
        "bad_digest_length",
    ),
    ("bad base64", {"digest": "not base64!"}, JSON, 400, "bad_base64"),
    ("base64 length", {"digest": "AAAAA"}, JSON, 400, "bad_base64"),
    ("digest not a string", {"digest": 12}, JSON, 400, "bad_base64"),
    ("md5", {"digest": SHA256, "hash": "md5"}, JSON, 400, "unsupported_hash"),
    ("hash not a string", {"digest": SHA256, "hash": ["sha256"]}, JSON, 400, "unsupported_hash"),
    ("bad format", {"digest": SHA256, "format": "pem"}, JSON, 400, "bad_format"),
    ("unknown field", {"digest": SHA256, "key": "other"}, JSON, 400, "unknown_field"),
    ("empty batch", {"batch": []}, JSON, 400, "bad_batch"),
    ("batch not a list", {"batch": {"digest": SHA256}}, JSON, 400, "bad_batch"),
    ("batch too big", {"batch": [{"digest": SHA256}] * 257}, JSON, 400, "bad_batch"),
    (
        "batch bad default",
        {"batch": [{"digest": SHA256}], "hash": "md5"},
        JSON,
        400,
        "unsupported_hash",
    ),
    (
        "batch and input",
        {"batch": [{"digest": SHA256}], "digest": SHA256},
        JSON,
        400,
        "unknown_field",
    ),
]


async def post(
    node: Node, path: str, body: bytes | Any, content_type: str, headers: Headers
) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await node.client.post(
        path, data=data, headers={**headers, "Content-Type": content_type}
    )


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status", "error"), SIGN_CASES, ids=[c[0] for c in SIGN_CASES]
)
async def test_bad_sign_requests(
    node: Node, case: str, body: bytes | Any, content_type: str, status: int, error: str
) -> None:
    headers = await node.add_client()
    response = await post(node, "/api/v1/sign/default", body, content_type, headers)
    assert response.status == status, (case, await response.text())
    answer = await response.json()
    assert answer["error"] == error and answer["message"]
    assert await node.entries("signature.issued") == []


async def test_bad_verify_cms_and_anchor_requests(node: Node) -> None:
    headers = await node.add_client()
    cases: list[tuple[str, Any, int, str]] = [
        ("/api/v1/verify/default", {"digest": SHA256}, 400, "missing_signature"),
        ("/api/v1/verify/default", {"digest": SHA256, "signature": "%%"}, 400, "bad_base64"),
        (
            "/api/v1/verify/default",
            {"digest": SHA256, "signature": "AA==", "version": 0},
            400,
            "bad_version",
        ),
        (
            "/api/v1/verify/default",
            {"digest": SHA256, "signature": "AA==", "version": True},
            400,
            "bad_version",
        ),
        (
            "/api/v1/verify/default",
            {"digest": SHA256, "signature": "AA==", "version": "1"},
            400,
            "bad_version",
        ),
        ("/api/v1/verify/default", {"signature": "AA=="}, 400, "missing_input"),
        ("/api/v1/cms/default", {}, 400, "missing_input"),
        ("/api/v1/cms/default", {"digest": "AAAA"}, 400, "cms_bad_request"),
        ("/api/v1/cms/default", {"digest": SHA256, "hash": "sha512"}, 400, "bad_digest_length"),
        ("/api/v1/cms/default", {"data": "eA==", "format": "raw"}, 400, "unknown_field"),
        ("/api/v1/anchors", {"kind": "x", "digest": SHA256}, 400, "bad_subject"),
        ("/api/v1/anchors", {"subject": "", "kind": "x", "digest": SHA256}, 400, "bad_subject"),
        ("/api/v1/anchors", {"subject": "a\nb", "kind": "x", "digest": SHA256}, 400, "bad_subject"),
        (
            "/api/v1/anchors",
            {"subject": "s" * 257, "kind": "x", "digest": SHA256},
            400,
            "bad_subject",
        ),
        (
            "/api/v1/anchors",
            {"subject": "s", "kind": "Bad Kind", "digest": SHA256},
            400,
            "bad_kind",
        ),
        ("/api/v1/anchors", {"subject": "s", "kind": "x"}, 400, "missing_input"),
        (
            "/api/v1/anchors",
            {"subject": "s", "kind": "x", "digest": "AAAA"},
            400,
            "bad_digest_length",
        ),
        (
            "/api/v1/anchors",
            {"subject": "s", "kind": "x", "digest": SHA256, "metadata": []},
            400,
            "bad_metadata",
        ),
        (
            "/api/v1/anchors",
            {"subject": "s", "kind": "x", "digest": SHA256, "metadata": {"k": "v" * 20000}},
            400,
            "bad_metadata",
        ),
        (
            "/api/v1/anchors",
            {"subject": "s", "kind": "x", "digest": SHA256, "wait": "maybe"},
            400,
            "bad_parameter",
        ),
        (
            "/api/v1/anchors",
            {"subject": "s", "kind": "x", "digest": SHA256, "extra": 1},
            400,
            "unknown_field",
        ),
    ]
    for path, body, status, error in cases:
        response = await post(node, path, body, JSON, headers)
        assert response.status == status, (path, body, await response.text())
        assert (await response.json())["error"] == error, (path, body)
    for query in (
        "",
        "?subject=",
        "?subject=s&limit=x",
        "?subject=s&after=-1",
        "?subject=s&limit=5000",
        "?subject=s&limit=\u00b2",  # Unicode digits pass str.isdigit() and fail int()
        "?subject=s&after=\u00b9",
        "?subject=s&after=" + "9" * 5000,
    ):
        response = await node.client.get(f"/api/v1/anchors{query}", headers=headers)
        assert response.status == 400, query
    missing = await node.client.get("/api/v1/anchors/not-a-uuid", headers=headers)
    assert (missing.status, (await missing.json())["error"]) == (404, "no_such_record")


async def test_a_batch_one_over_the_configured_limit_gets_the_documented_400(
    tmp_path: Path,
    token_config: TokenConfig,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    monkeypatch.setenv("SEKISHO_HSM_PIN", token_config.pin.reveal())
    settings = node_settings(tmp_path / "var", token_config, SEKISHO_SIGNING_MAX_BATCH="5")
    node = await start_node(settings, aiohttp_client)
    headers = await node.add_client()
    document = await (await node.client.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/v1/sign/{key}"]["post"]
    batch = document["components"]["schemas"]["SignBatch"]["properties"]["batch"]
    assert batch["maxItems"] == 5 and "400" in operation["responses"]
    item = {"digest": SHA256}
    over = await post(node, "/api/v1/sign/default", {"batch": [item] * 6}, JSON, headers)
    assert over.status == 400
    answer = await over.json()
    assert answer["error"] == "bad_batch" and "1 to 5" in answer["message"]
    assert await node.entries("signature.issued") == []
    full = await post(node, "/api/v1/sign/default", {"batch": [item] * 5}, JSON, headers)
    assert full.status == 200, await full.text()
    assert [r["index"] for r in (await full.json())["results"]] == [0, 1, 2, 3, 4]


async def test_oversized_bodies_are_refused_with_413(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await node.add_client()
    monkeypatch.setattr(signing_http, "MAX_JSON_BYTES", 1000)
    big = {"data": base64.b64encode(b"x" * 2000).decode()}
    response = await post(node, "/api/v1/sign/default", big, JSON, headers)
    assert (response.status, (await response.json())["error"]) == (413, "too_large")

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 200  # no Content-Length: the limit applies while reading
        yield b"{}"

    streamed = await node.client.post(
        "/api/v1/sign/default", data=chunks(), headers={**headers, "Content-Type": JSON}
    )
    assert streamed.status == 413


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 2**70, 1.5, 10**400 // 10**390])
    if choice == 3:
        return rng.choice(
            ["", "sha256", "der", "raw", "AAAA", SHA256, SHA512, "é", "\x00", "x" * 300]
        )
    if choice == 4:
        return rng.choice(["digest", "data", "hash", "format", "batch", "signature", "version"])
    if choice == 5:
        return base64.b64encode(rng.randbytes(rng.choice([0, 1, 31, 32, 48, 64, 65]))).decode()
    if choice == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [
        "digest",
        "data",
        "hash",
        "format",
        "batch",
        "signature",
        "version",
        "subject",
        "kind",
        "metadata",
        "wait",
        "x",
    ]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


async def test_random_bodies_never_cause_a_server_error(node: Node) -> None:
    headers = await node.add_client()
    rng = random.Random(20261123)
    paths = [
        "/api/v1/sign/default",
        "/api/v1/verify/default",
        "/api/v1/cms/default",
        "/api/v1/anchors",
    ]
    for attempt in range(300):
        body = _random_json(rng)
        response = await post(node, paths[attempt % len(paths)], body, JSON, headers)
        assert response.status < 500, (body, await response.text())
        if response.status >= 400:
            assert set(await response.json()) == {"error", "message"}
