"""The OpenAPI document describes exactly the routes the gateway serves under /api/."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.app import build_app
from gateway.config import load_settings
from gateway.http.openapi import OPENAPI_DOCUMENT

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


def batch_limit(document: dict[str, object]) -> object:
    operation = document["paths"]["/api/v1/sign/{key}"]["post"]  # type: ignore[index]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    (batch,) = [s for s in schema["oneOf"] if "batch" in s.get("properties", {})]
    return batch["properties"]["batch"]["maxItems"]


def test_the_batch_limit_is_the_configured_one(tmp_path: Path) -> None:
    environ = {"SEKISHO_DATA": str(tmp_path), "SEKISHO_SIGNING_MAX_BATCH": "17"}
    assert batch_limit(build_app(load_settings(environ=environ))[OPENAPI_DOCUMENT]) == 17
    default = build_app(load_settings(environ={"SEKISHO_DATA": str(tmp_path)}))
    assert batch_limit(default[OPENAPI_DOCUMENT]) == 256
