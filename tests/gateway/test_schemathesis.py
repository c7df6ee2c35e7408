"""Schemathesis against ``/api/openapi.json`` of a real node: every operation, authenticated.

Each operation gets its explicit examples, the coverage phase and (where its
inputs allow that many) 200 fuzzed cases, positive and negative, each sent with
a bearer token the operation accepts: the admin's personal token (admin,
officer, reader, uploader) for documents, accounts and the trail, an API
client's token (every scope, the ``default`` key, no rate limit) for the signing
API. Every answer must be non-5xx, with a documented status code, content type
and body (``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``).

Path parameters are sometimes swapped for real objects, so the cases reach past
404: destructive operations (delete, downgrade, disable) get objects of their
own and never touch the caller's account. Generation is derandomised.

``schemathesis.pytest.from_fixture`` cannot be used with pytest 9 (it writes the
removed ``Node._nodeid``), so the cases are generated from the document the
gateway builds, and the node's ``/api/openapi.json`` is checked to be exactly it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from asn1crypto import tsp
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import api_descriptions
from gateway.http.openapi import build_document
from tests.gateway.faults.client import call, call_json, person_token
from tests.nodes import run_cli, running_node

MAX_EXAMPLES = 200
SEED = 20240611
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CLIENT_PATHS = (
    "/api/v1/keys",
    "/api/v1/sign/",
    "/api/v1/verify/",
    "/api/v1/cms/",
    "/api/v1/timestamp",
    "/api/v1/anchors",
    "/api/v1/custody/handovers",
)
"""The signing API: an API client's token (people are refused there with 403)."""
VALID_FIELDS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("POST /api/v1/documents", "query"): [{"title": "fuzzed", "label": "SECRET"}],
    ("POST /api/v1/documents", "body"): [{"title": "fuzzed", "label": "SECRET"}],
    ("POST /api/v1/documents/{id}/downgrade", "body"): [
        {"label": "CONFIDENTIAL", "reason": "reviewed"},
        {"label": "UNCLASSIFIED", "reason": "released"},
    ],
    ("POST /api/v1/admin/users", "body"): [{"level": "SECRET"}],
    ("PATCH /api/v1/admin/users/{username}", "body"): [{"level": "CONFIDENTIAL"}],
    ("POST /api/v1/anchors", "body"): [
        {"digest": base64.b64encode(bytes(32)).decode(), "hash": "sha256"}
    ],
    ("POST /api/v1/custody/handovers", "body"): [
        {"digest": base64.b64encode(bytes(32)).decode(), "hash": "sha256"}
    ],
}
"""Fields the schema cannot pin down (levels and labels of this node, digest lengths) that
the node accepts: cases sometimes carry them, so they reach past validation."""
CALLER = "admin"
"""The account whose token the person routes use; generated cases never change it."""

AnyCase = schemathesis.Case[Any]

GENERATED: Counter[tuple[str, str]] = Counter()
"""Cases per (operation, phase), for the count check at the end."""
STATUSES: Counter[tuple[str, int]] = Counter()
FAILED: set[str] = set()


@dataclass
class Node:
    """The node under test, the tokens the cases use and real objects to aim at."""

    base: str
    person: str
    client: str
    real: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(operation label or '*', parameter) -> values that exist on the node."""


NODE: list[Node] = []
"""The running node, for the generation hooks (they run outside pytest's fixtures)."""


def served_document() -> dict[str, Any]:
    """The OpenAPI document the gateway serves (the node's own is checked against it)."""
    return build_document(api_descriptions())


schema = schemathesis.openapi.from_dict(
    served_document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                # The bearer scheme is not a generated header (negative cases would drop it):
                # every case carries the token chosen for its operation below.
                "with-security-parameters": False,
            },
        }
    ),
)
# RFC 3161 queries are opaque DER bytes: send them like application/octet-stream.
schemathesis.serializer.alias("application/timestamp-query", "application/octet-stream")
# Custody rules may come as TOML text.
schemathesis.serializer.alias("application/toml", "text/plain")


def _upload(base: str, token: str, title: str, label: str = "SECRET") -> str:
    status, raw = call(
        "POST",
        f"{base}/api/v1/documents?title={title}&label={label}&filename={title}.txt",
        token,
        f"{title} for schemathesis\n".encode(),
    )
    assert status == 201, raw
    return str(json.loads(raw)["id"])


def _create_user(base: str, token: str, username: str, roles: list[str]) -> str:
    body = {"username": username, "level": "SECRET", "roles": roles}
    status, answer = call_json("POST", f"{base}/api/v1/admin/users", token, body)
    assert status == 201, answer
    return username


def _real_objects(base: str, person: str, client: str) -> dict[tuple[str, str], list[str]]:
    """Documents, accounts, keys and an anchored record for the cases to aim at."""
    status, anchored = call_json(
        "POST",
        f"{base}/api/v1/anchors",
        client,
        {"subject": "crate-1", "kind": "custody", "digest": base64.b64encode(bytes(32)).decode()},
    )
    assert status == 201, anchored
    status, handover = call_json(
        "POST",
        f"{base}/api/v1/custody/handovers",
        client,
        {
            "subject": "crate-1",
            "kind": "custody",
            "digest": base64.b64encode(bytes(32)).decode(),
            "metadata": {"state": "depot"},
            "giver": "client:fuzzer",
            "receiver": "client:other",
        },
    )
    assert status == 201, handover
    return {
        ("*", "id"): [_upload(base, person, f"stable-{n}") for n in range(2)],
        ("DELETE /api/v1/documents/{id}", "id"): [
            _upload(base, person, f"doomed-{n}") for n in range(3)
        ],
        ("POST /api/v1/documents/{id}/downgrade", "id"): [
            _upload(base, person, f"downgraded-{n}") for n in range(2)
        ],
        ("*", "username"): [
            _create_user(base, person, "fuzz-reader", ["reader"]),
            _create_user(base, person, "fuzz-admin", ["admin", "reader"]),
            "alice",
            "olivia",
        ],
        ("*", "key"): ["default", "tsa"],
        ("*", "name"): ["default", "tsa"],
        ("*", "record"): [str(anchored["record"])],
        ("*", "handover"): [str(handover["handover"])],
    }


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "var"
    init = run_cli(["init", "--demo"], data_dir)
    assert init.returncode == 0, init.stderr
    person = person_token(data_dir, CALLER)  # admin, officer, reader and uploader
    scopes = "sign,verify,cms,timestamp,anchor"
    added = run_cli(
        ["clients", "add", "fuzzer", "--scopes", scopes, "--keys", "default", "--rate", "0"],
        data_dir,
    )  # rate 0: unlimited, so thousands of cases are not answered 429 for the wrong reason
    assert added.returncode == 0, added.stderr
    client = added.stdout.split("(shown once; store it now): ")[1].split()[0]
    with running_node(data_dir) as base:
        status, raw = call("GET", f"{base}/api/openapi.json")
        assert status == 200 and json.loads(raw) == served_document()
        running = Node(base, person, client, _real_objects(base, person, client))
        NODE.append(running)
        try:
            yield running
        finally:
            NODE.remove(running)


@schema.hook
def filter_path_parameters(
    context: schemathesis.HookContext, parameters: dict[str, Any] | None
) -> bool:
    """Never disable, enable or edit the account whose token the cases use."""
    return not parameters or parameters.get("username") != CALLER


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """The generated parameters, or with one of them replaced by an object that exists."""
    if not NODE or not parameters or context.operation is None:
        return st.just(parameters)
    label, real = context.operation.label, NODE[0].real
    choices: list[dict[str, Any] | None] = [parameters]
    for name in parameters:
        values = real.get((label, name), real.get(("*", name), []))
        choices += [{**parameters, name: value} for value in values]
    return st.sampled_from(choices)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The generated body, or with fields the node accepts (a TimeStampReq for time-stamps)."""
    if context.operation is None:
        return st.just(body)
    if context.operation.path == "/api/v1/timestamp":
        return st.sampled_from([body, _timestamp_query()])
    return _with_overrides(body, VALID_FIELDS.get((context.operation.label, "body"), []))


@schema.hook
def flatmap_query(context: schemathesis.HookContext, query: Any) -> st.SearchStrategy[Any]:
    """The generated query, or with parameters the node accepts."""
    if context.operation is None:
        return st.just(query)
    return _with_overrides(query, VALID_FIELDS.get((context.operation.label, "query"), []))


def _with_overrides(value: Any, overrides: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    if not isinstance(value, dict) or not overrides:
        return st.just(value)
    return st.sampled_from([value, *({**value, **override} for override in overrides)])


def _timestamp_query() -> bytes:
    imprint = {
        "hash_algorithm": {"algorithm": "sha256"},
        "hashed_message": hashlib.sha256(b"schemathesis").digest(),
    }
    fields = {"version": 1, "message_imprint": imprint, "nonce": 7, "cert_req": True}
    der: bytes = tsp.TimeStampReq(fields).dump()
    return der


def token_for(case: AnyCase, node: Node) -> str | None:
    """The bearer token of a caller the operation is for; None for public operations."""
    if case.operation.definition.raw.get("security") == []:
        return None
    return node.client if case.operation.path.startswith(CLIENT_PATHS) else node.person


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_conforms(case: AnyCase, node: Node) -> None:
    phase = case.meta.phase.name.value if case.meta is not None else "unknown"
    GENERATED[(case.operation.label, phase)] += 1
    token = token_for(case, node)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = case.call_and_validate(base_url=node.base, headers=headers, checks=CHECKS)
    except BaseException:
        FAILED.add(case.operation.label)  # reported by its own test; it stops early
        raise
    STATUSES[(case.operation.label, response.status_code)] += 1


def _has_inputs(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters") or operation.get("requestBody"))


@pytest.mark.slow
def test_every_operation_got_its_cases() -> None:
    """Each operation with inputs was fuzzed MAX_EXAMPLES times (run after the cases above).

    Operations without parameters or a body (the ledger's and CA's public reads, the key and
    account lists, this document) have a single distinct fuzzed case: Hypothesis stops there.
    Run with ``-s`` to see the cases per phase and the status codes answered.
    """
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in served_document()["paths"].items()
        for method, operation in item.items()
    }
    ran = {label for label, _ in GENERATED}
    if ran != set(operations):
        pytest.skip("needs every case of test_every_operation_conforms in this run")
    report = []
    for label in sorted(operations):
        phases = {phase: n for (op, phase), n in GENERATED.items() if op == label}
        statuses = {status: n for (op, status), n in STATUSES.items() if op == label}
        report.append(f"{label}: {phases} statuses {dict(sorted(statuses.items()))}")
    print("\n".join(report))
    short = [
        f"{label}: {GENERATED[(label, 'fuzzing')]}"
        for label, operation in operations.items()
        if _has_inputs(operation)
        and label not in FAILED
        and GENERATED[(label, "fuzzing")] < MAX_EXAMPLES
    ]
    assert not short, f"fewer than {MAX_EXAMPLES} fuzzed cases: {short}"
