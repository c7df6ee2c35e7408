"""OpenAPI path items for /api/v1/approvals (the two-person rule)."""

from __future__ import annotations

from typing import Any

from gateway.documents.answers import ApprovalDecision, ApprovalList, ApprovalPending
from gateway.http.openapi import error_responses, json_answer

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
APPROVAL_PENDING = json_answer(
    ApprovalPending,
    description="the two-person rule applies: the request waits for another officer",
)


PATHS: dict[str, Any] = {
    "/api/v1/approvals": {
        "get": {
            "summary": "Pending two-person requests on documents the officer is cleared for",
            "responses": {
                "200": json_answer(ApprovalList),
                **error_responses(401, 403, 503),
            },
        }
    },
    "/api/v1/approvals/{id}": {
        "get": {
            "summary": "One two-person request (officers cleared for its document)",
            "parameters": [_ID],
            "responses": {
                "200": json_answer(ApprovalPending, description="the request"),
                **error_responses(401, 403, 404, 503),
            },
        }
    },
    "/api/v1/approvals/{id}/approve": {
        "post": {
            "summary": "Approve and carry out a request (another officer than the requester)",
            "parameters": [_ID],
            "responses": {
                "200": json_answer(ApprovalDecision, description="approved and carried out"),
                **error_responses(400, 401, 403, 404, 409, 410, 503),
            },
        }
    },
    "/api/v1/approvals/{id}/refuse": {
        "post": {
            "summary": "Refuse a request (another officer than the requester)",
            "parameters": [_ID],
            "responses": {
                "200": json_answer(ApprovalDecision, description="refused"),
                **error_responses(401, 403, 404, 409, 503),
            },
        }
    },
}
