"""Bearer tokens: generated with 256 bits of randomness, stored as SHA-256, shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from gateway.auth.identity import Identity, Unauthenticated
from gateway.auth.last_used import note_use
from gateway.auth.principals import ApiClient, ApiToken, Principal
from gateway.ttlcache import TtlCache

LAST_USED_GRANULARITY = timedelta(minutes=5)  # avoid a write per request
TOKEN_PREFIX = "sks_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    """A fresh bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of a token (tokens are random, so a plain hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(
    *, principal: Principal | None = None, client: ApiClient | None = None, label: str = ""
) -> str:
    """Create a token for a person or a client; the plain token is returned once."""
    if (principal is None) == (client is None):
        raise ValueError("a token belongs to exactly one person or client")
    token = new_token()
    await ApiToken.create(
        token_hash=token_digest(token),
        prefix=token[:12],
        principal=principal,
        client=client,
        label=label,
    )
    return token


def identity_of_person(person: Principal, via: str) -> Identity:
    """The identity of a person."""
    return Identity(
        kind="person",
        name=person.username,
        principal_id=person.id,
        roles=frozenset(person.roles),
        level=person.level,
        compartments=frozenset(person.compartments),
        nationality=person.nationality,
        via=via,
    )


def identity_of_client(client: ApiClient, via: str) -> Identity:
    """The identity of an API client."""
    return Identity(
        kind="client",
        name=client.name,
        client_id=client.id,
        scopes=frozenset(client.scopes),
        keys=frozenset(client.keys),
        rate_per_minute=client.rate_per_minute,
        via=via,
    )


# Identities of recently seen tokens, by token digest, for at most 5 s: a
# revocation, disablement or clearance change made by another process takes
# effect within that time; changes made in this process clear it.
identity_cache: TtlCache[str, Identity] = TtlCache(5.0, size=4096)


# One answer for every refused token, so a caller cannot tell an unknown token
# from a revoked one, a disabled account's or a revoked client's.
REFUSED_TOKEN = "the bearer token is unknown, revoked or no longer allowed"  # noqa: S105


async def authenticate_bearer(token: str) -> Identity:
    """The identity behind a bearer token, or Unauthenticated (one message for all refusals)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        raise Unauthenticated("the bearer token is not a Sekisho token")
    digest = token_digest(token)
    cached = identity_cache.get(digest)
    if cached is not None:
        return cached
    row = await ApiToken.get_or_none(token_hash=digest).select_related("principal", "client")
    if row is None or row.revoked or not hmac.compare_digest(row.token_hash, digest):
        raise Unauthenticated(REFUSED_TOKEN)
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        note_use(row.id, now)  # off the request path: a locked database never fails this
    if row.principal is not None:
        if row.principal.disabled:
            raise Unauthenticated(REFUSED_TOKEN)
        identity = identity_of_person(row.principal, "token")
    elif row.client is not None and not row.client.revoked:
        identity = identity_of_client(row.client, "token")
    else:
        raise Unauthenticated(REFUSED_TOKEN)
    identity_cache.put(digest, identity)
    return identity


async def authenticate_certificate(fingerprint: str) -> Identity:
    """The API client registered for a TLS client-certificate SHA-256 fingerprint."""
    client = await ApiClient.get_or_none(cert_fingerprint=fingerprint.lower(), revoked=False)
    if client is None:
        raise Unauthenticated("no API client is registered for this client certificate")
    return identity_of_client(client, "certificate")
