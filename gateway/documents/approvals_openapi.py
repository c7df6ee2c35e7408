"""OpenAPI path items for /api/v1/approvals (the two-person rule)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
REQUEST: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "document",
        "version",
        "action",
        "requested_by",
        "requested_at",
        "expires_at",
        "status",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "document": {"type": "string", "format": "uuid"},
        "title": {"type": ["string", "null"]},
        "version": {"type": "integer", "minimum": 1, "description": "the version it acts on"},
        "action": {"type": "string", "enum": ["downgrade", "destroy"]},
        "new_label": {"type": ["string", "null"], "description": "a downgrade's new label"},
        "reason": {"type": "string"},
        "requested_by": {"type": "string"},
        "requested_at": _TIME,
        "expires_at": _TIME,
        "status": {
            "type": "string",
            "enum": ["pending", "approved", "refused", "expired", "stale"],
        },
        "decided_by": {"type": ["string", "null"]},
        "decided_at": _NULLABLE_TIME,
    },
}
PENDING: dict[str, Any] = {
    "description": "the two-person rule applies: the request waits for another officer",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["approval"],
                "properties": {"approval": REQUEST},
            }
        }
    },
}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_DECISION = {
    "type": "object",
    "required": ["approval"],
    "properties": {
        "approval": REQUEST,
        "document": {"type": "object", "description": "after a downgrade: the new version"},
        "destroyed_versions": {"type": "integer", "minimum": 0},
    },
}
PATHS: dict[str, Any] = {
    "/api/v1/approvals": {
        "get": {
            "summary": "Pending two-person requests on documents the officer is cleared for",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["approvals"],
                        "properties": {"approvals": {"type": "array", "items": REQUEST}},
                    }
                ),
                **error_responses(401, 403, 503),
            },
        }
    },
    "/api/v1/approvals/{id}": {
        "get": {
            "summary": "One two-person request (officers cleared for its document)",
            "parameters": [_ID],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["approval"],
                        "properties": {"approval": REQUEST},
                    }
                ),
                **error_responses(401, 403, 404, 503),
            },
        }
    },
    "/api/v1/approvals/{id}/approve": {
        "post": {
            "summary": "Approve and carry out a request (another officer than the requester)",
            "parameters": [_ID],
            "responses": {
                "200": _json(_DECISION, "approved and carried out"),
                **error_responses(400, 401, 403, 404, 409, 503),
            },
        }
    },
    "/api/v1/approvals/{id}/refuse": {
        "post": {
            "summary": "Refuse a request (another officer than the requester)",
            "parameters": [_ID],
            "responses": {
                "200": _json(_DECISION, "refused"),
                **error_responses(401, 403, 404, 409, 503),
            },
        }
    },
}
