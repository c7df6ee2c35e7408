"""The OpenAPI document: each API module contributes its paths; served at /api/openapi.json.

A test checks that every route under ``/api/`` is described here and that
nothing here is missing from the router, so the document cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway import __version__

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "parameter": {"type": "string", "description": "the path or query parameter at fault"},
    },
}


def error_responses(*statuses: int) -> dict[str, Any]:
    """Standard JSON error responses for the given status codes."""
    return {
        str(status): {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


def build_document(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge path items from every API module into one OpenAPI 3.1 document."""
    paths: dict[str, Any] = {}
    for path, item in parts.items():
        paths.setdefault(path, {}).update(item)
    for item in paths.values():
        for operation in item.values():
            _add_common_errors(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sekisho gateway API",
            "version": __version__,
            "description": "Documents, ledger and signing API of a Sekisho node.",
        },
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }


def _add_common_errors(operation: dict[str, Any]) -> None:
    """Answers any operation may give: 503 when the database or token is unavailable; with
    a body, 408 for one that stopped arriving or took too long (``http.body_idle_seconds``,
    ``http.body_total_seconds``), 413 over the route's limit, 415 in another media type."""
    responses = operation.setdefault("responses", {})
    common = (503, 408, 413, 415) if "requestBody" in operation else (503,)
    for status, answer in error_responses(*common).items():
        responses.setdefault(status, answer)


OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict)
OPENAPI_PATH = "/api/openapi.json"
EXPLORER_PATH = "/api/docs"
PATHS: dict[str, Any] = {
    EXPLORER_PATH: {
        "get": {
            "summary": "The API explorer: this document in a browser (Swagger UI)",
            "description": "An HTML page for people; it reads this OpenAPI document and can "
            "send requests with a bearer token typed into its Authorize dialog.",
            "security": [],
            "responses": {
                "200": {
                    "description": "the explorer page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    OPENAPI_PATH: {
        "get": {
            "summary": "This OpenAPI document",
            "security": [],
            "responses": {
                "200": {
                    "description": "the OpenAPI 3.1 description of the API",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["openapi", "info", "paths"]}
                        }
                    },
                }
            },
        }
    },
}


async def serve_openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return web.json_response(request.app[OPENAPI_DOCUMENT])
