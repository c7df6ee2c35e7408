"""OpenAPI path items for the signing API: keys, CA, sign, verify, CMS, time-stamps, anchors."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import error_responses, json_answer, json_body
from gateway.signing.requests import (
    AnchorRequest,
    CmsRequest,
    SignItem,
    VerifyRequest,
    batch_model,
)
from gateway.signing.responses import (
    BatchResult,
    ChainPage,
    CmsResult,
    KeyList,
    KeyView,
    LinkView,
    SignResult,
    VerifyResult,
)

_CLIENT_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"}
_KEY_PARAM = {
    "name": "key",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"},
}


def _op(summary: str, ok: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**ok, **error_responses(*errors)}, **extra}


_SIGNING_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429, 503)

_SIGN = "/api/v1/sign/{key}"
PATHS: dict[str, Any] = {
    "/api/v1/keys": {
        "get": _op(
            "Named signing keys visible to the caller, with versions and certificates",
            {"200": json_answer(KeyList)},
            401,
            429,
            503,
        )
    },
    "/api/v1/keys/{name}": {
        "get": _op(
            "One named key: algorithm, versions, public keys, certificate chains, status",
            {"200": json_answer(KeyView)},
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
    _SIGN: {
        "post": _op(
            "Sign a digest or data (or a batch) with the key's active version (scope sign)",
            {"200": json_answer(SignResult, BatchResult)},
            *_SIGNING_ERRORS,
            parameters=[_KEY_PARAM],
        )
    },
    "/api/v1/verify/{key}": {
        "post": _op(
            "Verify a signature under any version of the key, or one version (scope verify)",
            {"200": json_answer(VerifyResult)},
            *_SIGNING_ERRORS,
            parameters=[_KEY_PARAM],
            requestBody=json_body(VerifyRequest),
        )
    },
    "/api/v1/cms/{key}": {
        "post": _op(
            "Detached CMS SignedData over data or its digest (scope cms)",
            {
                "200": json_answer(
                    CmsResult,
                    description="DER ContentInfo(SignedData); JSON if only JSON is accepted",
                    other_content={
                        "application/pkcs7-signature": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                )
            },
            *_SIGNING_ERRORS,
            parameters=[_KEY_PARAM],
            requestBody=json_body(CmsRequest),
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
                "201": json_answer(LinkView, description="anchored (with receipt when wait=true)"),
                "202": json_answer(LinkView, description="queued; not integrated within the wait"),
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
            requestBody=json_body(AnchorRequest),
        ),
        "get": _op(
            "A subject's custody chain in order, each link with its receipt (scope anchor)",
            {"200": json_answer(ChainPage)},
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
            {"200": json_answer(LinkView)},
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
    """:data:`PATHS` with the sign body this node validates: one item, or a batch of up to
    ``max_batch`` (``signing.max_batch``) items."""
    sign = {**PATHS[_SIGN]["post"], "requestBody": json_body(SignItem, batch_model(max_batch))}
    return {**PATHS, _SIGN: {"post": sign}}
