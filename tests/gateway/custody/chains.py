"""A parts custody set-up on an in-process node: the rule, the clients, anchoring helpers."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from gateway.app_keys import LEDGER
from gateway.custody.rules import validate_rule
from gateway.custody.store import RuleVersion, add_rule
from gateway.signing.clients import ClientSpec
from hsm import KeyAlgorithm
from tests.gateway.custody.test_rules import parts_rule
from tests.gateway.signing.api_node import Headers, Node

SUBJECT = "part:SN-4711-A"
WRITERS = ("inspector", "depot-3", "unit-12")


@dataclass
class Parties:
    """Every client of the set-up, by name: its Authorization header and signing key."""

    headers: dict[str, Headers]
    keys: dict[str, str]


async def store_rule(node: Node, **changes: Any) -> RuleVersion:
    """Store (a version of) the parts rule, as the operator would."""
    rule = validate_rule(parts_rule(**changes))
    return await add_rule(rule, ledger=node.app[LEDGER], actor="operator:test", source="test")


async def parties(node: Node) -> Parties:
    """factory owns the chains; inspector, depot-3 and unit-12 write them; depot-3 and
    carrier-7 sign hand-overs, each with a key of its own."""
    headers: dict[str, Headers] = {}
    keys: dict[str, str] = {}
    for name in ("depot-3", "carrier-7"):
        keys[name] = (await node.create_key(KeyAlgorithm.EC_P256)).name
        headers[name] = await node.add_client(
            scopes=["anchor", "sign"], keys=[keys[name]], name=name
        )
    for name in ("inspector", "unit-12", "intruder", "factory"):
        headers[name] = await node.add_client(scopes=["anchor"], name=name)
    await node.managers()[1].update("factory", ClientSpec(chain_writers=(*WRITERS, "intruder")))
    return Parties(headers, keys)


def body(state: str | None, content: bytes = b"form", **extra: Any) -> dict[str, Any]:
    """An anchoring body for the factory's chain of the part, in ``state``."""
    metadata: dict[str, Any] = {"state": state} if state else {}
    return {
        "subject": SUBJECT,
        "owner": "factory",
        "kind": "part.custody",
        "digest": base64.b64encode(hashlib.sha256(content).digest()).decode(),
        "metadata": metadata,
        **extra,
    }


async def anchor(
    node: Node, headers: Headers, payload: dict[str, Any], query: str = ""
) -> tuple[int, dict[str, Any]]:
    """POST an anchor; (status, JSON body)."""
    response = await node.client.post(f"/api/v1/anchors{query}", json=payload, headers=headers)
    result: dict[str, Any] = await response.json()
    return response.status, result


async def sign_digest(node: Node, headers: Headers, key: str, digest_hex: str) -> dict[str, Any]:
    """Sign a hand-over document's SHA-256 through the signing API; the signatures body."""
    response = await node.client.post(
        f"/api/v1/sign/{key}",
        json={"digest": base64.b64encode(bytes.fromhex(digest_hex)).decode()},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    signed = await response.json()
    return {"key": key, "version": signed["version"], "signature": signed["signature"]}
