"""OpenAPI path items for /api/v1/ledger (public reads, like the tlog-tiles hash tiles).

Entries need a credential (an officer, auditor or admin, or a ``ledger-read``
client) unless the node runs with ``ledger.public_entries``.
"""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses

_INT = {"type": "integer", "minimum": 0}
_B64 = {"type": "string", "contentEncoding": "base64"}
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


def _json(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": properties}
    return {"description": "ok", "content": {"application/json": {"schema": schema}}}


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
        _json(["size", "root", "note"], {"size": _INT, "root": _B64, "note": {"type": "string"}}),
        503,
    ),
    "/api/v1/ledger/key": _get(
        "The log's checkpoint verification key (C2SP signed-note vkey)",
        _json(
            ["origin", "vkey", "public_key", "algorithm"],
            {
                "origin": {"type": "string"},
                "name": {"type": "string"},
                "algorithm": {"type": "string", "const": "Ed25519"},
                "key_id": {"type": "string"},
                "public_key": _B64,
                "vkey": {"type": "string"},
            },
        ),
    ),
    "/api/v1/ledger/entries/{index}": _get(
        "One ledger entry with its leaf hash (officers, auditors, admins and ledger-read "
        "clients; anyone when the node sets ledger.public_entries)",
        _json(
            ["index", "entry", "leaf_hash"],
            {
                "index": _INT,
                "entry": {"type": ["object", "null"], "description": "the entry's JSON"},
                "leaf_hash": _HEX,
                "data": {**_B64, "description": "the raw entry, when it is not JSON"},
            },
        ),
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
        _json(
            ["index", "leaf_hash", "entry", "opening", "fields"],
            {
                "index": _INT,
                "leaf_hash": _HEX,
                "entry": {"type": "string", "description": "the exact entry bytes (UTF-8)"},
                "opening": {"type": "object", "description": "fields and salts"},
                "fields": {"type": "object", "description": "the opened entry"},
            },
        ),
        400,
        401,
        404,
        public=False,
        parameters=[_INDEX],
    ),
    "/api/v1/ledger/proof/inclusion": _get(
        "RFC 9162 inclusion proof, by entry index or leaf hash",
        _json(
            ["index", "size", "leaf_hash", "root", "proof"],
            {
                "index": _INT,
                "size": _INT,
                "leaf_hash": _HEX,
                "root": _B64,
                "proof": {"type": "array", "items": _B64},
                "checkpoint": {"type": "string"},
            },
        ),
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
        _json(
            ["old", "new", "old_root", "new_root", "proof"],
            {
                "old": _INT,
                "new": _INT,
                "old_root": _B64,
                "new_root": _B64,
                "proof": {"type": "array", "items": _B64},
                "checkpoint": {"type": "string"},
            },
        ),
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
