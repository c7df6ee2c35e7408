"""OpenAPI path items for /api/v1/documents."""

from __future__ import annotations

from typing import Any

from gateway.documents.answers import (
    Destroyed,
    DocumentAnchor,
    DocumentList,
    DocumentView,
    FileCheck,
    VersionList,
)
from gateway.documents.approvals_openapi import APPROVAL_PENDING
from gateway.documents.bodies import DowngradeBody
from gateway.http.openapi import error_responses, json_answer, json_body

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {
    "name": "version",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}
_FORM_FIELDS: dict[str, Any] = {
    "title": {"type": "string", "minLength": 1, "maxLength": 256},
    "label": {"type": "string", "example": "SECRET//LOGISTICS//REL TO FRA, GBR"},
    "tags": {"type": "string", "description": "comma-separated"},
    "filename": {"type": "string", "description": "when the file part names none"},
    "file": {"type": "string", "format": "binary"},
}


def _upload_body(required: list[str], fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": required,
                    "properties": {name: _FORM_FIELDS[name] for name in fields},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }
    }


def _raw_params(*names: str) -> list[dict[str, Any]]:
    """The form fields as query parameters, for a raw (application/octet-stream) body."""
    return [
        {"name": name, "in": "query", "schema": {"type": "string"}, "description": "raw body only"}
        for name in names
    ]


_NEW_DOCUMENT_BODY = _upload_body(
    ["title", "label", "file"], ("title", "label", "tags", "filename", "file")
)
_NEW_DOCUMENT_PARAMS = _raw_params("title", "label", "tags", "filename")
"""A raw upload needs ``title`` and ``label`` here, as the form needs them."""
_NEW_VERSION_BODY = _upload_body(["file"], ("label", "filename", "file"))
"""A new version keeps the document's title and tags; its label defaults to the current one."""
_NEW_VERSION_PARAMS = _raw_params("label", "filename")


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    return {**ok, **error_responses(*errors)}


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
                {
                    "name": "offset",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                },
            ],
            "responses": _responses(
                {
                    "200": json_answer(DocumentList),
                },
                400,
                401,
                403,
                503,
            ),
        },
        "post": {
            "summary": "Upload a document (multipart, or a raw body with query parameters)",
            "parameters": _NEW_DOCUMENT_PARAMS,
            "requestBody": _NEW_DOCUMENT_BODY,
            "responses": _responses(
                {
                    "201": json_answer(DocumentView, description="registered"),
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
            "responses": _responses({"200": json_answer(DocumentView)}, 400, 401, 403, 404, 503),
        },
        "delete": {
            "summary": "Destroy a document by crypto-shredding (officers); 202 with a request "
            "when the two-person rule applies; 410 when it is already destroyed",
            "parameters": [_ID],
            "responses": _responses(
                {
                    "200": json_answer(Destroyed),
                    "202": APPROVAL_PENDING,
                },
                401,
                403,
                404,
                409,
                410,
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
                    "200": json_answer(VersionList),
                },
                401,
                403,
                404,
                503,
            ),
        },
        "post": {
            "summary": "Upload the next version",
            "parameters": [_ID, *_NEW_VERSION_PARAMS],
            "requestBody": _NEW_VERSION_BODY,
            "responses": _responses(
                {
                    "201": json_answer(DocumentView, description="registered"),
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
    "/api/v1/documents/{id}/anchor": {
        "get": {
            "summary": "The version's registration entry, its receipt and the opening of its "
            "hashes, size and label (for readers cleared for the version): with "
            "sekisho verify RECEIPT --entry ENTRY --opening OPENING a copy of the file can be "
            "checked offline against the anchor",
            "parameters": [_ID, _VERSION],
            "responses": _responses(
                {
                    "200": json_answer(DocumentAnchor, description="entry, opening and receipt"),
                },
                400,
                401,
                403,
                404,
                503,
            ),
        }
    },
    "/api/v1/documents/{id}/check": {
        "post": {
            "summary": "Check a file against the anchor of a version you may read (the file is "
            "hashed as it streams and not kept); the check is a recorded access decision",
            "description": "A hidden document and an id that never existed give the same 404.",
            "parameters": [_ID, _VERSION],
            "requestBody": _upload_body(["file"], ("file",)),
            "responses": _responses(
                {"200": json_answer(FileCheck, description="the file's hash and the anchored one")},
                400,
                401,
                403,
                404,
                413,
                503,
            ),
        }
    },
    "/api/v1/documents/{id}/downgrade": {
        "post": {
            "summary": "Re-encrypt under a lower label as a new version (officers, with a reason); "
            "202 with a request when the two-person rule applies",
            "parameters": [_ID],
            "requestBody": json_body(DowngradeBody),
            "responses": _responses(
                {
                    "201": json_answer(DocumentView, description="downgraded"),
                    "202": APPROVAL_PENDING,
                },
                400,
                401,
                403,
                404,
                409,
                503,
            ),
        }
    },
}
