"""HTTP handlers of the signing API: keys, CA, sign, verify, CMS, RFC 3161 time-stamps.

Handlers authenticate, charge the client's rate limit, parse and shape; the
work is done by :mod:`gateway.signing`.
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from gateway.app_keys import SIGNING
from gateway.auth.identity import Identity
from gateway.errors import NotFound, SekishoError
from gateway.http import bodies
from gateway.http.auth import identity
from gateway.http.headers import attachment
from gateway.http.models import answer
from gateway.signing import requests as parse
from gateway.signing.named_keys import KeyVersion, NamedKey, pem
from gateway.signing.requests import HashName
from gateway.signing.responses import (
    BatchItemResult,
    BatchResult,
    CmsResult,
    SignResult,
    VerifyResult,
    b64,
)
from gateway.signing.service import Signature
from gateway.signing.wiring import SigningApi
from hsm import HsmError

routes = web.RouteTableDef()
API = "/api/v1"
MAX_JSON_BYTES = 24 * 1024 * 1024
"""Largest JSON body: 16 MiB of data in base64, with room; send a digest for more."""
MAX_QUERY_BYTES = 64 * 1024
TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"
CMS_MEDIA_TYPE = "application/pkcs7-signature"


def _api(request: web.Request) -> SigningApi:
    return request.app[SIGNING]


def client(request: web.Request, scope: str, cost: int = 1) -> Identity:
    """The calling API client, charged ``cost`` against its rate and checked for ``scope``."""
    caller = identity(request)
    if caller.kind == "client":
        _api(request).limiter.charge(f"client:{caller.client_id}", caller.rate_per_minute, cost)
    caller.require_scope(scope)
    return caller


async def read_json(request: web.Request) -> Any:
    """A JSON body of up to :data:`MAX_JSON_BYTES` (the one reader, gateway.http.bodies)."""
    return await bodies.read_json(request, MAX_JSON_BYTES)


# ----- keys -------------------------------------------------------------------------


def _version_view(version: KeyVersion, ca: bytes) -> dict[str, Any]:
    return {
        "version": version.version,
        "status": version.status,
        "created_at": version.created_at.isoformat(),
        "retired_at": version.retired_at.isoformat() if version.retired_at else None,
        "public_key_pem": pem(version.public_key_der, "PUBLIC KEY"),
        "spki_sha256": version.spki_sha256,
        "certificate_pem": pem(version.certificate),
        "certificate_sha256": version.certificate_sha256,
        "certificate_chain_pem": pem(version.certificate) + pem(ca),
    }


def key_view(key: NamedKey, ca: bytes) -> dict[str, Any]:
    """A named key with every version."""
    current = key.current
    return {
        "name": key.name,
        "algorithm": key.algorithm.value,
        "purpose": key.purpose,
        "status": key.status,
        "current_version": current.version if current else None,
        "versions": [_version_view(v, ca) for v in key.versions],
    }


def _visible(caller: Identity, key: NamedKey) -> bool:
    """People see every key; clients their allow-listed keys, and TSA keys with that scope."""
    if caller.is_person:
        return True
    if key.purpose == "timestamp":
        return "timestamp" in caller.scopes
    return key.name in caller.keys


def _reader(request: web.Request) -> Identity:
    caller = identity(request)
    if caller.kind == "client":
        _api(request).limiter.charge(f"client:{caller.client_id}", caller.rate_per_minute)
    return caller


@routes.get(API + "/keys")
async def list_keys(request: web.Request) -> web.Response:
    """The named keys the caller may see."""
    caller = _reader(request)
    api = _api(request)
    ca = await api.registry.ca_certificate()
    keys = [key_view(k, ca) for k in await api.registry.all() if _visible(caller, k)]
    return web.json_response({"keys": keys})


@routes.get(API + "/keys/{name}")
async def get_key(request: web.Request) -> web.Response:
    """One named key with its versions, certificates and status."""
    caller = _reader(request)
    api = _api(request)
    name = request.match_info["name"]
    key = await api.registry.get(name)
    if not _visible(caller, key):
        raise NotFound(f"no signing key named {name!r}", code="no_such_key")
    return web.json_response(key_view(key, await api.registry.ca_certificate()))


@routes.get(API + "/ca.pem")
async def ca_pem(request: web.Request) -> web.Response:
    """The token CA certificate that issues every key certificate (public, no credentials)."""
    der = await _api(request).registry.ca_certificate()
    return web.Response(text=pem(der), content_type="application/x-pem-file")


# ----- sign and verify -------------------------------------------------------------


def _signature_fields(signed: Signature) -> dict[str, Any]:
    return {
        "digest": b64(signed.digest),
        "hash": signed.hash_name,
        "format": signed.encoding,
        "signature": b64(signed.signature),
    }


def _item_result(index: int, outcome: Signature | SekishoError | HsmError) -> BatchItemResult:
    if isinstance(outcome, Signature):
        return BatchItemResult(index=index, **_signature_fields(outcome))
    return BatchItemResult(index=index, error=outcome.code, message=outcome.message)


@routes.post(API + "/sign/{key}")
@bodies.body_limit(MAX_JSON_BYTES)
async def sign(request: web.Request) -> web.Response:
    """Sign a digest or data, or a ``batch`` of them, with the key's active version."""
    caller = client(request, "sign")
    api = _api(request)
    name = request.match_info["key"]
    parsed = parse.sign_request(await read_json(request), api.max_batch)
    if not isinstance(parsed, list):
        key, [result] = await api.signing.sign(caller, name, [parsed])
        if not isinstance(result, Signature):
            raise result
        return web.json_response(
            answer(SignResult(**_key_fields(key), **_signature_fields(result)))
        )
    if caller.kind == "client" and len(parsed) > 1:
        api.limiter.charge(f"client:{caller.client_id}", caller.rate_per_minute, len(parsed) - 1)
    valid = [p for p in parsed if isinstance(p, parse.SignInput)]
    if valid:
        key, outcomes = await api.signing.sign(caller, name, valid)
    else:
        key, outcomes = await api.signing.signing_key(caller, name), []
    signed = iter(outcomes)
    results = [
        _item_result(index, item if isinstance(item, parse.InputError) else next(signed))
        for index, item in enumerate(parsed)
    ]
    return web.json_response(answer(BatchResult(**_key_fields(key), results=results)))


def _key_fields(key: KeyVersion) -> dict[str, Any]:
    return {"key": key.name, "version": key.version, "algorithm": key.algorithm.value}


@routes.post(API + "/verify/{key}")
@bodies.body_limit(MAX_JSON_BYTES)
async def verify(request: web.Request) -> web.Response:
    """Whether a signature is valid under any version (or a given one) of the key."""
    caller = client(request, "verify")
    item, signature, version = parse.verify_request(await read_json(request))
    name = request.match_info["key"]
    found = await _api(request).signing.verify(caller, name, item, signature, version)
    return web.json_response(answer(VerifyResult(key=name, valid=found is not None, version=found)))


# ----- CMS and time-stamps -------------------------------------------------------------


@routes.post(API + "/cms/{key}")
@bodies.body_limit(MAX_JSON_BYTES)
async def cms(request: web.Request) -> web.Response:
    """A detached CMS SignedData (DER; JSON with base64 when the client accepts only JSON)."""
    caller = client(request, "cms")
    cms_input = parse.cms_request(await read_json(request))
    result = await _api(request).signing.cms(caller, request.match_info["key"], cms_input)
    if _wants_json(request):
        view = CmsResult(
            **_key_fields(result.key),
            hash=cast(HashName, result.hash_name),
            digest=b64(result.digest),
            cms=b64(result.der),
        )
        return web.json_response(answer(view))
    return web.Response(
        body=result.der,
        content_type=CMS_MEDIA_TYPE,
        headers={
            "Content-Disposition": attachment("signature.p7s"),
            "Sekisho-Key": result.key.name,
            "Sekisho-Key-Version": str(result.key.version),
        },
    )


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and CMS_MEDIA_TYPE not in accept


@routes.post(API + "/timestamp")
async def timestamp(request: web.Request) -> web.Response:
    """RFC 3161 over HTTP: a TimeStampReq in, a TimeStampResp out (rejections too)."""
    caller = client(request, "timestamp")
    query = await bodies.read_body(request, TIMESTAMP_QUERY, MAX_QUERY_BYTES)
    reply = await _api(request).signing.timestamp(caller, query)
    return web.Response(body=reply, content_type=TIMESTAMP_REPLY)
