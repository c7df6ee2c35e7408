"""OpenAPI path items for /api/v1/documents."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1}}
_DOC = {"type": "object", "required": ["id", "title", "label", "version"]}
_UPLOAD_BODY = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["label", "file"],
                "properties": {
                    "title": {"type": "string"},
                    "label": {"type": "string", "example": "SECRET//LOGISTICS//REL TO FRA, GBR"},
                    "tags": {"type": "string", "description": "comma-separated"},
                    "file": {"type": "string", "format": "binary"},
                },
            }
        },
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }
}
_RAW_PARAMS = [
    {"name": name, "in": "query", "schema": {"type": "string"}}
    for name in ("title", "label", "tags", "filename")
]


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {**ok, **error_responses(*errors)}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PATHS: dict[str, Any] = {
    "/api/v1/documents": {
        "get": {
            "summary": "List or search the documents the caller is cleared for",
            "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "tag", "in": "query", "schema": {"type": "string"}},
                {"name": "level", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                },
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": _responses(
                {
                    "200": _json({"type": "object", "required": ["documents", "count"]}),
                },
                400,
                401,
                403,
                503,
            ),
        },
        "post": {
            "summary": "Upload a document (multipart, or a raw body with query parameters)",
            "parameters": _RAW_PARAMS,
            "requestBody": _UPLOAD_BODY,
            "responses": _responses(
                {
                    "201": _json(_DOC, "registered"),
                },
                400,
                401,
                403,
                413,
                503,
                507,
            ),
        },
    },
    "/api/v1/documents/{id}": {
        "get": {
            "summary": "Metadata of a document (404 when absent or not cleared)",
            "parameters": [_ID, _VERSION],
            "responses": _responses({"200": _json(_DOC)}, 400, 401, 403, 404, 503),
        },
        "delete": {
            "summary": "Destroy a document by crypto-shredding (officers)",
            "parameters": [_ID],
            "responses": _responses(
                {
                    "200": _json({"type": "object", "required": ["destroyed_versions"]}),
                },
                401,
                403,
                404,
                503,
            ),
        },
    },
    "/api/v1/documents/{id}/versions": {
        "get": {
            "summary": "Versions the caller may see",
            "parameters": [_ID],
            "responses": _responses(
                {
                    "200": _json({"type": "object", "required": ["versions"]}),
                },
                401,
                403,
                404,
                503,
            ),
        },
        "post": {
            "summary": "Upload the next version",
            "parameters": [_ID, *_RAW_PARAMS],
            "requestBody": _UPLOAD_BODY,
            "responses": _responses(
                {
                    "201": _json(_DOC, "registered"),
                },
                400,
                401,
                403,
                404,
                409,
                413,
                503,
                507,
            ),
        },
    },
    "/api/v1/documents/{id}/content": {
        "get": {
            "summary": "The plaintext (Range supported); the access is ledgered first",
            "parameters": [
                _ID,
                _VERSION,
                {"name": "Range", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": _responses(
                {
                    "200": {
                        "description": "whole document",
                        "content": {"application/octet-stream": {}},
                    },
                    "206": {
                        "description": "a byte range",
                        "content": {"application/octet-stream": {}},
                    },
                },
                400,
                401,
                403,
                404,
                410,
                416,
                503,
            ),
        }
    },
    "/api/v1/documents/{id}/receipt": {
        "get": {
            "summary": "C2SP tlog-proof receipt of the version's registration",
            "parameters": [_ID, _VERSION],
            "responses": _responses(
                {
                    "200": {
                        "description": "receipt",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
                400,
                401,
                403,
                404,
                503,
            ),
        }
    },
    "/api/v1/documents/{id}/downgrade": {
        "post": {
            "summary": "Re-encrypt under a lower label as a new version (officers, with a reason)",
            "parameters": [_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["label", "reason"],
                            "properties": {
                                "label": {"type": "string"},
                                "reason": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": _responses(
                {
                    "201": _json(_DOC, "downgraded"),
                },
                400,
                401,
                403,
                404,
                503,
            ),
        }
    },
}
