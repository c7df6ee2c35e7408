"""OpenAPI path items for /api/v1/ledger (public reads, like the tlog-tiles hash tiles).

Entries need a credential (an officer, auditor or admin, or a ``ledger-read``
client) unless the node runs with ``ledger.public_entries``.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses, json_answer
from gateway.ledger.answers import (
    CheckpointView,
    ConsistencyProofView,
    EntryOpening,
    EntryView,
    InclusionProofView,
    LogKeyView,
)

_INT = {"type": "integer", "minimum": 0}
_HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_INDEX = {"name": "index", "in": "path", "required": True, "schema": _INT}


def _query(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": _INT,
        "description": description,
    }


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _get(
    summary: str, ok: dict[str, Any], *errors: int, public: bool = True, **extra: Any
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": ok, **error_responses(*errors)},
        **extra,
    }
    if public:
        operation["security"] = []
    return {"get": operation}


PATHS: dict[str, Any] = {
    "/api/v1/ledger/checkpoint": _get(
        "The latest signed checkpoint",
        json_answer(CheckpointView),
        503,
    ),
    "/api/v1/ledger/key": _get(
        "The log's checkpoint verification key (C2SP signed-note vkey)",
        json_answer(LogKeyView),
    ),
    "/api/v1/ledger/entries/{index}": _get(
        "One ledger entry with its leaf hash (officers, auditors, admins and ledger-read "
        "clients; anyone when the node sets ledger.public_entries)",
        json_answer(EntryView),
        400,
        401,
        403,
        404,
        public=False,
        parameters=[_INDEX],
    ),
    "/api/v1/ledger/entries/{index}/opening": _get(
        "An entry with its opening (the values and salts of its committed fields): for "
        "officers, auditors and admins, and for a person whose own action the entry records; "
        "anyone else gets the 404 of an index without an entry. Check it offline with "
        "sekisho verify RECEIPT --key VKEY --entry ENTRY --opening OPENING",
        json_answer(EntryOpening),
        400,
        401,
        404,
        public=False,
        parameters=[_INDEX],
    ),
    "/api/v1/ledger/proof/inclusion": _get(
        "RFC 9162 inclusion proof, by entry index or leaf hash",
        json_answer(InclusionProofView),
        400,
        404,
        parameters=[
            _query("index", "entry index (or give leaf_hash)"),
            {
                "name": "leaf_hash",
                "in": "query",
                "schema": _HEX,
                "description": "hex SHA-256 leaf hash (or give index)",
            },
            _query("size", "tree size (default: the latest checkpoint)"),
        ],
    ),
    "/api/v1/ledger/proof/consistency": _get(
        "RFC 9162 consistency proof between two tree sizes",
        json_answer(ConsistencyProofView),
        400,
        parameters=[
            _query("old", "the older tree size", required=True),
            _query("new", "the newer tree size (default: the latest checkpoint)"),
        ],
    ),
    "/api/v1/ledger/receipts/{index}": _get(
        "C2SP tlog-proof receipt of an entry against the latest checkpoint",
        _text("receipt"),
        400,
        404,
        parameters=[_INDEX],
    ),
}
