"""The OpenAPI document describes exactly the routes the gateway serves under /api/."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.accounts.bodies import (
    AccountChangesBody,
    AccountList,
    CreatedAccount,
    NewAccountBody,
    SwitchedAccount,
    UpdatedAccount,
)
from gateway.app import build_app
from gateway.config import load_settings
from gateway.custody.bodies import HandoverBody, HandoverSignatureBody
from gateway.custody.rules import Rule
from gateway.documents.bodies import DowngradeBody
from gateway.http.openapi import OPENAPI_DOCUMENT, model_schema
from gateway.signing.requests import (
    AnchorRequest,
    CmsRequest,
    InputError,
    SignItem,
    VerifyRequest,
    batch_model,
    sign_request,
)
from gateway.signing.responses import BatchResult, CmsResult, SignResult, VerifyResult

METHODS = {"get", "post", "put", "patch", "delete"}


def served_operations(tmp_path: Path) -> set[tuple[str, str]]:
    app = build_app(load_settings(environ={"SEKISHO_DATA": str(tmp_path)}))
    operations = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        method = route.method.lower()
        if path and path.startswith("/api/") and method in METHODS:
            operations.add((re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path), method))
    return operations


def documented_operations(tmp_path: Path) -> set[tuple[str, str]]:
    app = build_app(load_settings(environ={"SEKISHO_DATA": str(tmp_path)}))
    document = app[OPENAPI_DOCUMENT]
    assert document["openapi"].startswith("3.")
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_every_api_route_is_documented_and_every_documented_route_exists(tmp_path: Path) -> None:
    served = served_operations(tmp_path)
    documented = documented_operations(tmp_path)
    assert served - documented == set(), "routes missing from the OpenAPI document"
    assert documented - served == set(), "documented operations the router does not serve"
    assert ("/api/openapi.json", "get") in served


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A ``#/components/schemas/...`` reference's target, or the schema itself."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), ref
    target: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return target


def batch_limit(document: dict[str, Any]) -> object:
    operation = document["paths"]["/api/v1/sign/{key}"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    (batch,) = [
        resolve(document, s)
        for s in schema["oneOf"]
        if "batch" in resolve(document, s).get("properties", {})
    ]
    return batch["properties"]["batch"]["maxItems"]


def test_the_batch_limit_is_the_configured_one(tmp_path: Path) -> None:
    environ = {"SEKISHO_DATA": str(tmp_path), "SEKISHO_SIGNING_MAX_BATCH": "17"}
    assert batch_limit(build_app(load_settings(environ=environ))[OPENAPI_DOCUMENT]) == 17
    default = build_app(load_settings(environ={"SEKISHO_DATA": str(tmp_path)}))
    assert batch_limit(default[OPENAPI_DOCUMENT]) == 256


def body_models(max_batch: int) -> dict[tuple[str, str], tuple[type[BaseModel], ...]]:
    """The models that validate each JSON request body the API accepts."""
    return {
        ("/api/v1/sign/{key}", "post"): (SignItem, batch_model(max_batch)),
        ("/api/v1/verify/{key}", "post"): (VerifyRequest,),
        ("/api/v1/cms/{key}", "post"): (CmsRequest,),
        ("/api/v1/anchors", "post"): (AnchorRequest,),
        ("/api/v1/admin/users", "post"): (NewAccountBody,),
        ("/api/v1/admin/users/{username}", "patch"): (AccountChangesBody,),
        ("/api/v1/documents/{id}/downgrade", "post"): (DowngradeBody,),
        ("/api/v1/custody/rules", "post"): (Rule,),
        ("/api/v1/custody/handovers", "post"): (HandoverBody,),
        ("/api/v1/custody/handovers/{handover}/signatures", "post"): (HandoverSignatureBody,),
    }


def json_bodies(document: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Each operation's JSON request body schema, as the list of its alternatives."""
    found = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = content["application/json"]["schema"]
                found[(path, method)] = schema.get("oneOf", [schema])
    return found


@pytest.mark.parametrize("max_batch", [256, 17])
def test_every_json_body_schema_is_the_validating_models_schema(
    tmp_path: Path, max_batch: int
) -> None:
    environ = {"SEKISHO_DATA": str(tmp_path), "SEKISHO_SIGNING_MAX_BATCH": str(max_batch)}
    document = build_app(load_settings(environ=environ))[OPENAPI_DOCUMENT]
    expected = body_models(max_batch)
    bodies = json_bodies(document)
    assert set(bodies) == set(expected), "a JSON body without a model (or a model without one)"
    for operation, alternatives in bodies.items():
        models = expected[operation]
        assert [a.get("$ref") for a in alternatives] == [
            f"#/components/schemas/{m.__name__}" for m in models
        ], operation
        for alternative, model in zip(alternatives, models, strict=True):
            assert resolve(document, alternative) == model_schema(model), operation
    assert json.loads(json.dumps(document)) == document  # served as it is built


RESPONSE_MODELS: dict[tuple[str, str], tuple[type[BaseModel], ...]] = {
    ("/api/v1/sign/{key}", "post"): (SignResult, BatchResult),
    ("/api/v1/verify/{key}", "post"): (VerifyResult,),
    ("/api/v1/cms/{key}", "post"): (CmsResult,),
    ("/api/v1/admin/users", "get"): (AccountList,),
    ("/api/v1/admin/users", "post"): (CreatedAccount,),
    ("/api/v1/admin/users/{username}", "patch"): (UpdatedAccount,),
    ("/api/v1/admin/users/{username}/disable", "post"): (SwitchedAccount,),
    ("/api/v1/admin/users/{username}/enable", "post"): (SwitchedAccount,),
    ("/api/v1/admin/users/{username}/unlock", "post"): (SwitchedAccount,),
}
"""Responses built with models (the rest are still hand-written schemas)."""


def test_model_built_responses_are_described_by_their_models(tmp_path: Path) -> None:
    document = build_app(load_settings(environ={"SEKISHO_DATA": str(tmp_path)}))[OPENAPI_DOCUMENT]
    for (path, method), models in RESPONSE_MODELS.items():
        responses = document["paths"][path][method]["responses"]
        ok = responses.get("200") or responses["201"]
        schema = ok["content"]["application/json"]["schema"]
        alternatives = schema.get("oneOf", [schema])
        assert len(alternatives) == len(models), path
        for alternative, model in zip(alternatives, models, strict=True):
            assert alternative["$ref"] == f"#/components/schemas/{model.__name__}"
            assert resolve(document, alternative) == model_schema(model, "serialization")


def test_every_json_answer_is_described_by_a_model(tmp_path: Path) -> None:
    """No hand-written response schema is left: each 2xx JSON answer names generated
    component schemas, and each of those is its model's own schema."""
    document = build_app(load_settings(environ={"SEKISHO_DATA": str(tmp_path)}))[OPENAPI_DOCUMENT]
    hand_written = []
    described = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if not status.startswith("2") or schema is None or path == "/api/openapi.json":
                    continue
                for alternative in schema.get("oneOf", [schema]):
                    if "$ref" not in alternative:
                        hand_written.append(f"{method.upper()} {path} {status}")
                        continue
                    described += 1
                    assert resolve(document, alternative)["type"] == "object"
    assert hand_written == []
    assert described >= 50


def test_the_schema_bounds_are_the_enforced_ones() -> None:
    """The batch model refuses one item over its schema's maxItems, accepts maxItems."""
    model = batch_model(5)
    limit = model_schema(model)["properties"]["batch"]["maxItems"]
    item = {"digest": base64.b64encode(bytes(32)).decode()}
    assert len(sign_request({"batch": [item] * limit}, 5)) == limit  # type: ignore[arg-type]
    with pytest.raises(InputError) as refused:
        sign_request({"batch": [item] * (limit + 1)}, 5)
    assert refused.value.code == "bad_batch" and refused.value.status == 400
