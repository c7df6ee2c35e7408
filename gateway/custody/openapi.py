"""OpenAPI path items for /api/v1/custody (rules, hand-overs, chains)."""

from __future__ import annotations

from typing import Any

from gateway.custody.answers import (
    ChainExport,
    HandoverList,
    HandoverView,
    RuleItems,
    RuleList,
    RuleVersions,
    StoredRule,
)
from gateway.custody.bodies import HandoverBody, HandoverSignatureBody
from gateway.custody.rules import Rule
from gateway.http.openapi import error_responses, json_answer, json_body

_TOML = "the same rule document as TOML (docs/signing.md, 'Custody rules')"


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
                "200": json_answer(RuleList),
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
                "201": json_answer(StoredRule, description="the stored version"),
                **error_responses(400, 401, 403, 413, 415, 503),
            },
        },
    },
    "/api/v1/custody/rules/{name}": {
        "get": {
            "summary": "Every version of one rule, oldest first",
            "parameters": [_path("name", "the rule's name")],
            "responses": {
                "200": json_answer(RuleVersions),
                **error_responses(401, 403, 404),
            },
        },
    },
    "/api/v1/custody/rules/{name}/items": {
        "get": {
            "summary": "Items under a rule that are stuck (overdue) or out of rule",
            "parameters": [_path("name", "the rule's name")],
            "responses": {"200": json_answer(RuleItems), **error_responses(401, 403, 404, 503)},
        },
    },
    "/api/v1/custody/handovers": {
        "get": {
            "summary": "Pending hand-overs the client is a party to or writes the chain of",
            "responses": {
                "200": json_answer(HandoverList),
                **error_responses(401, 403, 429),
            },
        },
        "post": {
            "summary": "Open a two-party hand-over for the next link of a chain (scope anchor)",
            "requestBody": json_body(HandoverBody),
            "responses": {
                "201": json_answer(HandoverView, description="the pending hand-over"),
                **error_responses(400, 401, 403, 404, 413, 415, 429, 503),
            },
        },
    },
    "/api/v1/custody/handovers/{handover}": {
        "get": {
            "summary": "One hand-over (its parties and its chain's writers)",
            "parameters": [_path("handover", "the hand-over id")],
            "responses": {"200": json_answer(HandoverView), **error_responses(401, 403, 404, 429)},
        },
    },
    "/api/v1/custody/handovers/{handover}/signatures": {
        "post": {
            "summary": "Add a party's signature over the document's SHA-256; anchors the link "
            "once both verify",
            "parameters": [_path("handover", "the hand-over id")],
            "requestBody": json_body(HandoverSignatureBody),
            "responses": {
                "200": json_answer(HandoverView),
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
                "200": json_answer(
                    ChainExport,
                    description="the chain",
                    other_content={"text/csv": {"schema": {"type": "string"}}},
                ),
                **error_responses(400, 401, 403, 404, 429, 503),
            },
        },
    },
}
