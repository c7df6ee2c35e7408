"""OpenAPI path items for /api/v1/custody (rules, hand-overs, chains)."""

from __future__ import annotations

from typing import Any

from gateway.custody.bodies import HandoverBody, HandoverSignatureBody
from gateway.custody.rules import Rule
from gateway.http.openapi import error_responses, json_body

_TOML = "the same rule document as TOML (docs/signing.md, 'Custody rules')"

_HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_B64 = {"type": "string", "contentEncoding": "base64"}
_PARTY = {"type": "string", "pattern": "^client:[A-Za-z0-9._@-]{1,64}$"}
_RULE = {
    "type": "object",
    "required": ["name", "version", "sha256", "document"],
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "sha256": _HEX,
        "document": {"type": "object"},
        "actor": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_HANDOVER = {
    "type": "object",
    "required": ["handover", "owner", "status", "giver", "receiver", "document", "sha256"],
    "properties": {
        "handover": {"type": "string", "format": "uuid"},
        "owner": {"type": "string"},
        "subject": {"type": "string"},
        "status": {"enum": ["pending", "anchoring", "anchored", "refused"]},
        "giver": {"type": "string"},
        "receiver": {"type": "string"},
        "document": {"type": "object", "description": "what both parties sign (its SHA-256)"},
        "sha256": _HEX,
        "signatures": {"type": "object"},
        "record": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "link": {"type": "object", "description": "the anchored link, once both signed"},
    },
}
_CHAIN = {
    "type": "object",
    "required": ["format", "owner", "subject", "links", "rules", "handovers"],
    "properties": {
        "format": {"const": "sekisho.custody.export/v1"},
        "owner": {"type": "string"},
        "subject": {"type": "string"},
        "links": {"type": "array", "items": {"type": "object"}},
        "rules": {"type": "array", "items": {"type": "object"}},
        "handovers": {"type": "array", "items": _HANDOVER},
        "state": {"type": ["string", "null"]},
        "holder": {"type": ["string", "null"]},
        "pending_handovers": {"type": "array", "items": _HANDOVER},
        "alerts": {"type": "array", "items": {"type": "object"}},
        "rule": {"type": ["object", "null"]},
        "overdue": {"type": ["string", "null"]},
    },
}
_ITEMS = {
    "type": "object",
    "required": ["rule", "items"],
    "properties": {"rule": {"type": "string"}, "items": {"type": "array"}},
}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


PATHS: dict[str, Any] = {
    "/api/v1/custody/rules": {
        "get": {
            "summary": "The newest version of every custody rule (officer, auditor or admin)",
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"rules": {"type": "array", "items": _RULE}}}
                ),
                **error_responses(401, 403),
            },
        },
        "post": {
            "summary": "Store the next version of a custody rule (officer or admin); ledgered",
            "requestBody": json_body(
                Rule,
                other_content={
                    "application/toml": {"schema": {"type": "string", "description": _TOML}}
                },
            ),
            "responses": {
                "201": _json(_RULE, "the stored version"),
                **error_responses(400, 401, 403, 413, 415, 503),
            },
        },
    },
    "/api/v1/custody/rules/{name}": {
        "get": {
            "summary": "Every version of one rule, oldest first",
            "parameters": [_path("name", "the rule's name")],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"versions": {"type": "array", "items": _RULE}},
                    }
                ),
                **error_responses(401, 403, 404),
            },
        },
    },
    "/api/v1/custody/rules/{name}/items": {
        "get": {
            "summary": "Items under a rule that are stuck (overdue) or out of rule",
            "parameters": [_path("name", "the rule's name")],
            "responses": {"200": _json(_ITEMS), **error_responses(401, 403, 404, 503)},
        },
    },
    "/api/v1/custody/handovers": {
        "get": {
            "summary": "Pending hand-overs the client is a party to or writes the chain of",
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"handovers": {"type": "array", "items": _HANDOVER}},
                    }
                ),
                **error_responses(401, 403, 429),
            },
        },
        "post": {
            "summary": "Open a two-party hand-over for the next link of a chain (scope anchor)",
            "requestBody": json_body(HandoverBody),
            "responses": {
                "201": _json(_HANDOVER, "the pending hand-over"),
                **error_responses(400, 401, 403, 404, 413, 415, 429, 503),
            },
        },
    },
    "/api/v1/custody/handovers/{handover}": {
        "get": {
            "summary": "One hand-over (its parties and its chain's writers)",
            "parameters": [_path("handover", "the hand-over id")],
            "responses": {"200": _json(_HANDOVER), **error_responses(401, 403, 404, 429)},
        },
    },
    "/api/v1/custody/handovers/{handover}/signatures": {
        "post": {
            "summary": "Add a party's signature over the document's SHA-256; anchors the link "
            "once both verify",
            "parameters": [_path("handover", "the hand-over id")],
            "requestBody": json_body(HandoverSignatureBody),
            "responses": {
                "200": _json(_HANDOVER),
                **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 503),
            },
        },
    },
    "/api/v1/custody/chains": {
        "get": {
            "summary": "A custody chain with its rule, state, holder, hand-overs and alerts "
            "(JSON export for 'sekisho custody verify', or CSV timeline)",
            "parameters": [
                _query("subject", "the chain's subject", required=True),
                _query("owner", "the chain's owner (required for officers)"),
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}},
            ],
            "responses": {
                "200": {
                    "description": "the chain",
                    "content": {
                        "application/json": {"schema": _CHAIN},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **error_responses(400, 401, 403, 404, 429, 503),
            },
        },
    },
}
