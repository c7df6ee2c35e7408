"""OpenAPI path items for the signing API: keys, CA, sign, verify, CMS, time-stamps, anchors."""

from __future__ import annotations

import copy
from typing import Any

from gateway.config import SigningSettings
from gateway.http.openapi import error_responses

DEFAULT_MAX_BATCH = SigningSettings().max_batch

_B64 = {"type": "string", "contentEncoding": "base64", "pattern": "^[A-Za-z0-9+/_-]*={0,2}$"}
_HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_HASH = {"type": "string", "enum": ["sha256", "sha384", "sha512"], "default": "sha256"}
_FORMAT = {
    "type": "string",
    "enum": ["der", "raw"],
    "default": "der",
    "description": "ECDSA encoding: DER Ecdsa-Sig-Value or raw r||s; Ed25519/RSA-PSS are the same",
}
_KEY_PARAM = {
    "name": "key",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"},
}
_INPUT: dict[str, Any] = {
    "digest": {**_B64, "description": "precomputed digest (length must match 'hash')"},
    "data": {**_B64, "description": "data to hash (Ed25519 signs the data itself)"},
    "hash": _HASH,
    "format": _FORMAT,
}
_ONE_INPUT = [{"required": ["digest"]}, {"required": ["data"]}]
_SIGN_ITEM = {
    "type": "object",
    "properties": _INPUT,
    "additionalProperties": False,
    "oneOf": _ONE_INPUT,
}
_BATCH = {
    "type": "object",
    "required": ["batch"],
    "additionalProperties": False,
    "properties": {
        "batch": {
            "type": "array",
            "minItems": 1,
            "maxItems": DEFAULT_MAX_BATCH,
            "items": _SIGN_ITEM,
        },
        "hash": _HASH,
        "format": _FORMAT,
    },
}
_KEY_FIELDS = {
    "key": {"type": "string"},
    "version": {"type": "integer", "minimum": 1},
    "algorithm": {"type": "string", "enum": ["ec-p256", "ed25519", "rsa-3072"]},
}
_SIGNATURE = {"digest": _B64, "hash": _HASH, "format": _FORMAT, "signature": _B64}
_SIGN_RESULT = {
    "type": "object",
    "required": [*_KEY_FIELDS, *_SIGNATURE],
    "properties": {**_KEY_FIELDS, **_SIGNATURE},
}
_BATCH_RESULT = {
    "type": "object",
    "required": [*_KEY_FIELDS, "results"],
    "properties": {
        **_KEY_FIELDS,
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    **_SIGNATURE,
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_VERSION = {
    "type": "object",
    "required": ["version", "status", "public_key_pem", "certificate_pem"],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": ["active", "retired"]},
        "created_at": {"type": "string", "format": "date-time"},
        "retired_at": {"type": ["string", "null"], "format": "date-time"},
        "public_key_pem": {"type": "string"},
        "spki_sha256": _HEX,
        "certificate_pem": {"type": "string"},
        "certificate_sha256": _HEX,
        "certificate_chain_pem": {"type": "string"},
    },
}
_KEY = {
    "type": "object",
    "required": ["name", "algorithm", "purpose", "status", "versions"],
    "properties": {
        "name": {"type": "string"},
        "algorithm": _KEY_FIELDS["algorithm"],
        "purpose": {"type": "string", "enum": ["sign", "timestamp"]},
        "status": {"type": "string", "enum": ["active", "retired"]},
        "current_version": {"type": ["integer", "null"]},
        "versions": {"type": "array", "items": _VERSION},
    },
}
_CLIENT_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"}
_ANCHOR_BODY = {
    "type": "object",
    "required": ["subject", "kind", "digest"],
    "additionalProperties": False,
    "properties": {
        "subject": {"type": "string", "minLength": 1, "maxLength": 256},
        "kind": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
        "digest": _B64,
        "hash": _HASH,
        "metadata": {"type": "object"},
        "wait": {"type": "boolean"},
        "owner": {
            **_CLIENT_NAME,
            "description": "the client whose chain to extend (default: the caller's own); "
            "another client's only if it lists the caller as a chain writer",
        },
    },
}
_LINK = {
    "type": "object",
    "required": ["record", "subject", "sequence", "kind", "digest", "entry", "leaf_hash"],
    "properties": {
        "record": {"type": "string", "format": "uuid"},
        "owner": {"type": "string", "description": "the client whose chain this is"},
        "subject": {"type": "string"},
        "subject_sha256": _HEX,
        "sequence": {"type": "integer", "minimum": 1},
        "kind": {"type": "string"},
        "hash": _HASH,
        "digest": _B64,
        "metadata": {"type": "object"},
        "metadata_sha256": _HEX,
        "client": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "previous": {"type": ["string", "null"]},
        "rule": {"type": ["string", "null"], "description": "the custody rule it was checked by"},
        "rule_version": {"type": ["integer", "null"]},
        "handover": {"type": ["string", "null"], "description": "the two-party hand-over"},
        "entry": {"type": "string", "description": "the exact ledger entry (canonical JSON)"},
        "leaf_hash": _HEX,
        "index": {"type": ["integer", "null"]},
        "receipt": {"type": ["string", "null"], "description": "c2sp.org/tlog-proof"},
    },
}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**ok, **error_responses(*errors)}, **extra}


_SIGNING_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429, 503)

PATHS: dict[str, Any] = {
    "/api/v1/keys": {
        "get": _op(
            "Named signing keys visible to the caller, with versions and certificates",
            {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["keys"],
                        "properties": {"keys": {"type": "array", "items": _KEY}},
                    }
                )
            },
            401,
            429,
            503,
        )
    },
    "/api/v1/keys/{name}": {
        "get": _op(
            "One named key: algorithm, versions, public keys, certificate chains, status",
            {"200": _json(_KEY)},
            401,
            404,
            429,
            503,
            parameters=[{**_KEY_PARAM, "name": "name"}],
        )
    },
    "/api/v1/ca.pem": {
        "get": _op(
            "The token CA certificate that issues every key certificate (PEM)",
            {
                "200": {
                    "description": "ok",
                    "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                }
            },
            503,
            security=[],
        )
    },
    "/api/v1/sign/{key}": {
        "post": _op(
            "Sign a digest or data (or a batch) with the key's active version (scope sign)",
            {"200": _json({"oneOf": [_SIGN_RESULT, _BATCH_RESULT]})},
            *_SIGNING_ERRORS,
            parameters=[_KEY_PARAM],
            requestBody=_body({"oneOf": [_SIGN_ITEM, _BATCH]}),
        )
    },
    "/api/v1/verify/{key}": {
        "post": _op(
            "Verify a signature under any version of the key, or one version (scope verify)",
            {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["key", "valid", "version"],
                        "properties": {
                            "key": {"type": "string"},
                            "valid": {"type": "boolean"},
                            "version": {"type": ["integer", "null"]},
                        },
                    }
                )
            },
            *_SIGNING_ERRORS,
            parameters=[_KEY_PARAM],
            requestBody=_body(
                {
                    "type": "object",
                    "required": ["signature"],
                    "additionalProperties": False,
                    "properties": {
                        **_INPUT,
                        "signature": _B64,
                        "version": {"type": "integer", "minimum": 1},
                    },
                    "oneOf": _ONE_INPUT,
                }
            ),
        )
    },
    "/api/v1/cms/{key}": {
        "post": _op(
            "Detached CMS SignedData over data or its digest (scope cms)",
            {
                "200": {
                    "description": "DER ContentInfo(SignedData); JSON if only JSON is accepted",
                    "content": {
                        "application/pkcs7-signature": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": [*_KEY_FIELDS, "hash", "digest", "cms"],
                                "properties": {
                                    **_KEY_FIELDS,
                                    "hash": _HASH,
                                    "digest": _B64,
                                    "cms": _B64,
                                },
                            }
                        },
                    },
                }
            },
            *_SIGNING_ERRORS,
            parameters=[_KEY_PARAM],
            requestBody=_body(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"digest": _B64, "data": _B64, "hash": _HASH},
                    "oneOf": _ONE_INPUT,
                }
            ),
        )
    },
    "/api/v1/timestamp": {
        "post": _op(
            "RFC 3161 time-stamp (scope timestamp); bad queries get a rejection reply",
            {
                "200": {
                    "description": "TimeStampResp: granted, or rejection with failInfo",
                    "content": {
                        "application/timestamp-reply": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                }
            },
            401,
            403,
            413,
            415,
            429,
            503,
            requestBody={
                "required": True,
                "content": {
                    "application/timestamp-query": {
                        "schema": {"type": "string", "format": "binary"}
                    }
                },
            },
        )
    },
    "/api/v1/anchors": {
        "post": _op(
            "Anchor a record in its subject's custody chain (scope anchor)",
            {
                "201": _json(_LINK, "anchored (with receipt when wait=true)"),
                "202": _json(_LINK, "queued; not integrated within the wait"),
            },
            400,
            401,
            403,
            404,
            409,
            413,
            415,
            429,
            503,
            parameters=[{"name": "wait", "in": "query", "schema": {"type": "boolean"}}],
            requestBody=_body(_ANCHOR_BODY),
        ),
        "get": _op(
            "A subject's custody chain in order, each link with its receipt (scope anchor)",
            {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["owner", "subject", "links", "next_after"],
                        "properties": {
                            "owner": {"type": "string"},
                            "subject": {"type": "string"},
                            "links": {"type": "array", "items": _LINK},
                            "next_after": {"type": ["integer", "null"]},
                        },
                    }
                )
            },
            400,
            401,
            403,
            404,
            429,
            503,
            parameters=[
                {
                    "name": "owner",
                    "in": "query",
                    "description": "whose chain (default: the caller's own)",
                    "schema": _CLIENT_NAME,
                },
                {
                    "name": "subject",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                },
                {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                },
            ],
        ),
    },
    "/api/v1/anchors/{record}": {
        "get": _op(
            "One anchored record with its receipt (scope anchor)",
            {"200": _json(_LINK)},
            401,
            403,
            404,
            429,
            503,
            parameters=[
                {
                    "name": "record",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
        )
    },
}


def paths(max_batch: int) -> dict[str, Any]:
    """:data:`PATHS` with the batch limit this node enforces (``signing.max_batch``).

    The batch schema object appears once in PATHS; a deep copy's memo maps it to
    its copy, so the limit is set wherever the schema is used.
    """
    memo: dict[int, Any] = {}
    described: dict[str, Any] = copy.deepcopy(PATHS, memo)
    memo[id(_BATCH)]["properties"]["batch"]["maxItems"] = max_batch
    return described
