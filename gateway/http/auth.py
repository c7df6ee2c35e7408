"""Authentication middleware: bearer tokens (and TLS client certificates) to an Identity."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.auth.identity import Identity, Unauthenticated
from gateway.auth.tokens import authenticate_bearer, authenticate_certificate
from gateway.http.paths import is_machine_path

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDENTITY = web.RequestKey("identity", Identity)
ADDRESS_LENGTH = 64


def client_address(request: web.Request) -> str:
    """The client's address as ledger entries and the trail record it."""
    return (request.remote or "unknown")[:ADDRESS_LENGTH]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the caller's identity when credentials are presented; reject bad ones."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        request[IDENTITY] = await authenticate_bearer(token.strip())
    elif is_machine_path(request.path) and (fingerprint := _client_cert_fingerprint(request)):
        # Portal pages: a person's certificate is the portal's business (certificate sign-in).
        request[IDENTITY] = await authenticate_certificate(fingerprint)
    return await handler(request)


def _client_cert_fingerprint(request: web.Request) -> str | None:
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None


def identity(request: web.Request) -> Identity:
    """The caller, or 401 when no credentials were presented."""
    found = request.get(IDENTITY)
    if not isinstance(found, Identity):
        raise Unauthenticated("authentication required: send a bearer token")
    return found


def optional_identity(request: web.Request) -> Identity | None:
    """The caller if authenticated."""
    found = request.get(IDENTITY)
    return found if isinstance(found, Identity) else None


def client_certificate_fingerprint(request: web.Request) -> str | None:
    """Hex SHA-256 of the TLS client certificate's DER, when one was presented."""
    return _client_cert_fingerprint(request)
