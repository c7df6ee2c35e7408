"""API clients of the signing API: scopes, key allow-list, rate, certificate, bearer tokens.

Every change is one ``client.changed`` ledger entry queued in the same
database transaction as the change itself (:mod:`gateway.ledger.transactional`),
so no change exists without its entry. Entries carry the client
name, scopes, key names, rate, the certificate's SHA-256 and token prefixes;
never a token. Servers cache identities for a few seconds
(:data:`gateway.auth.tokens.identity_cache`): a change made by the CLI takes
effect there within that time; changes made in-process clear the cache.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from tortoise.exceptions import IntegrityError

from gateway.auth.identity import CLIENT_SCOPES
from gateway.auth.principals import ApiClient, ApiToken
from gateway.auth.tokens import identity_cache, issue_token
from gateway.db.serialised import serialised
from gateway.db.transaction import transaction
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.ledger.transactional import NodeLedger, queue_entry
from gateway.signing.models import SigningKey

CLIENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
KEY_SCOPES = frozenset({"sign", "verify", "cms"})
DEFAULT_RATE = 600
MAX_RATE = 1_000_000
PREFIX_LENGTH = 12


@dataclass(frozen=True)
class ClientSpec:
    """What a client may do; ``None`` fields are left unchanged by :meth:`ClientService.update`."""

    scopes: tuple[str, ...] | None = None
    keys: tuple[str, ...] | None = None
    rate_per_minute: int | None = None
    cert_fingerprint: str | None = None
    chain_writers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ClientView:
    """A client as ``clients list`` shows it."""

    client: ApiClient
    live_tokens: list[str]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (token prefixes only)."""
        c = self.client
        return {
            "name": c.name,
            "scopes": list(c.scopes),
            "keys": list(c.keys),
            "rate_per_minute": c.rate_per_minute,
            "cert_sha256": c.cert_fingerprint,
            "chain_writers": list(c.chain_writers),
            "revoked": c.revoked,
            "tokens": self.live_tokens,
            "created_at": c.created_at.isoformat(),
        }


def split_names(values: Iterable[str]) -> tuple[str, ...]:
    """``["a,b", "c"]`` -> ``("a", "b", "c")``, order kept, duplicates dropped."""
    names: list[str] = []
    for value in values:
        for part in value.split(","):
            if part.strip() and part.strip() not in names:
                names.append(part.strip())
    return tuple(names)


def certificate_fingerprint(pem_or_der: bytes) -> str:
    """Hex SHA-256 of a certificate's DER (what TLS client authentication compares)."""
    try:
        if b"-----BEGIN" in pem_or_der:
            certificate = x509.load_pem_x509_certificate(pem_or_der)
        else:
            certificate = x509.load_der_x509_certificate(pem_or_der)
    except ValueError:
        raise BadRequest(
            "the client certificate is not PEM or DER X.509", code="bad_cert"
        ) from None
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def check_fingerprint(value: str) -> str:
    """64 hex digits (colons allowed), lower-cased."""
    cleaned = value.replace(":", "").strip().lower()
    if not _FINGERPRINT.fullmatch(cleaned):
        raise BadRequest("a certificate fingerprint is 64 hex digits (SHA-256)", code="bad_cert")
    return cleaned


class ClientService:
    """Adds, changes and revokes API clients and their tokens, ledgering each change."""

    def __init__(self, ledger: NodeLedger, *, actor: str, source: str = "cli") -> None:
        self._ledger = ledger
        self._actor = actor
        self._source = source

    async def add(self, name: str, spec: ClientSpec) -> tuple[ApiClient, str]:
        """A new client and its first bearer token (return it to the operator once)."""
        if not CLIENT_NAME.fullmatch(name):
            raise BadRequest(
                f"client name {name!r} must be 1-64 characters of a-z, 0-9, '.', '_' and '-'",
                code="bad_client_name",
            )
        scopes = await self._scopes(spec.scopes or ())
        keys = await self._keys(spec.keys or (), scopes)
        rate = self._rate(DEFAULT_RATE if spec.rate_per_minute is None else spec.rate_per_minute)
        fingerprint = check_fingerprint(spec.cert_fingerprint) if spec.cert_fingerprint else None
        writers = await self._chain_writers(name, spec.chain_writers or ())
        if await ApiClient.exists(name=name):
            raise Conflict(f"client {name!r} already exists (names are never reused)")
        try:
            async with transaction():
                client = await ApiClient.create(
                    name=name,
                    scopes=list(scopes),
                    keys=list(keys),
                    rate_per_minute=rate,
                    cert_fingerprint=fingerprint,
                    chain_writers=list(writers),
                )
                token = await issue_token(client=client, label="initial")
                await self._record(
                    client,
                    "created",
                    ["scopes", "keys", "rate_per_minute", "cert_sha256", "tokens"]
                    + (["chain_writers"] if writers else []),
                    token[:PREFIX_LENGTH],
                )
        except IntegrityError:
            raise Conflict(
                f"client {name!r} or its certificate fingerprint is already registered"
            ) from None
        return client, token

    async def update(self, name: str, spec: ClientSpec) -> tuple[ApiClient, list[str]]:
        """Change scopes, keys, rate or certificate; returns the names of changed fields."""
        client = await self._live(name)
        wanted: dict[str, object] = {}
        scopes = tuple(client.scopes)
        if spec.scopes is not None:
            scopes = await self._scopes(spec.scopes)
            wanted["scopes"] = list(scopes)
        if spec.keys is not None or spec.scopes is not None:
            wanted["keys"] = list(
                await self._keys(client.keys if spec.keys is None else spec.keys, scopes)
            )
        if spec.rate_per_minute is not None:
            wanted["rate_per_minute"] = self._rate(spec.rate_per_minute)
        if spec.cert_fingerprint is not None:
            value = spec.cert_fingerprint
            wanted["cert_fingerprint"] = check_fingerprint(value) if value else None
        if spec.chain_writers is not None:
            wanted["chain_writers"] = list(await self._chain_writers(name, spec.chain_writers))
        changed = sorted(f for f, v in wanted.items() if getattr(client, f) != v)
        if not changed:
            return client, []
        for field in changed:
            setattr(client, field, wanted[field])
        try:
            async with transaction():
                await client.save(update_fields=changed)
                await self._record(client, "updated", changed)
        except IntegrityError:
            raise Conflict("that certificate fingerprint belongs to another client") from None
        identity_cache.clear()
        return client, changed

    async def revoke(self, name: str) -> bool:
        """Revoke a client and every token it has; False if it already was revoked."""
        await self._get(name)
        async with serialised("clients"):  # checked where it is written (no double revoke)
            client = await self._get(name)
            if client.revoked:
                return False
            await ApiClient.filter(id=client.id).update(revoked=True)
            await ApiToken.filter(client_id=client.id).update(revoked=True)
            client.revoked = True
            await self._record(client, "revoked", ["revoked", "tokens"])
        identity_cache.clear()
        return True

    async def issue_token(self, name: str, label: str = "") -> str:
        """Another bearer token for a live client (for rotation); shown once."""
        await self._live(name)
        async with serialised("clients"):  # no token for a client being revoked
            client = await self._live(name)
            token = await issue_token(client=client, label=label[:64])
            await self._record(client, "token_issued", ["tokens"], token[:PREFIX_LENGTH])
        return token

    async def revoke_token(self, name: str, prefix: str) -> bool:
        """Revoke one of a client's tokens by prefix; False if it already was revoked."""
        client = await self._get(name)
        async with serialised("clients"):  # checked where it is written (no double revoke)
            row = await ApiToken.get_or_none(client_id=client.id, prefix=prefix[:PREFIX_LENGTH])
            if row is None:
                raise NotFound(
                    f"client {name!r} has no token with prefix {prefix[:PREFIX_LENGTH]!r}"
                )
            if row.revoked:
                return False
            await ApiToken.filter(id=row.id).update(revoked=True)
            await self._record(client, "token_revoked", ["tokens"], row.prefix)
        identity_cache.clear()
        return True

    async def all(self) -> list[ClientView]:
        """Every client (revoked ones too), by name, with live token prefixes."""
        views = []
        for client in await ApiClient.all().order_by("name"):
            tokens = await ApiToken.filter(client_id=client.id, revoked=False).order_by("id")
            views.append(ClientView(client, [t.prefix for t in tokens]))
        return views

    async def _get(self, name: str) -> ApiClient:
        client = await ApiClient.get_or_none(name=name)
        if client is None:
            raise NotFound(f"no API client named {name!r}")
        return client

    async def _live(self, name: str) -> ApiClient:
        client = await self._get(name)
        if client.revoked:
            raise Conflict(f"client {name!r} is revoked; add a new client instead")
        return client

    async def _scopes(self, scopes: Iterable[str]) -> tuple[str, ...]:
        chosen = split_names(scopes)
        unknown = [s for s in chosen if s not in CLIENT_SCOPES]
        if unknown or not chosen:
            raise BadRequest(
                f"scopes must be a non-empty subset of {', '.join(CLIENT_SCOPES)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
                code="bad_scopes",
            )
        return tuple(s for s in CLIENT_SCOPES if s in chosen)

    async def _keys(self, keys: Iterable[str], scopes: tuple[str, ...]) -> tuple[str, ...]:
        names = split_names(keys)
        if names and not KEY_SCOPES.intersection(scopes):
            raise BadRequest("keys only matter with the sign, verify or cms scope", code="bad_keys")
        if KEY_SCOPES.intersection(scopes) and not names:
            raise BadRequest(
                "the sign, verify and cms scopes need the keys the client may use "
                "(--keys on the CLI)",
                code="bad_keys",
            )
        rows = {k.name: k for k in await SigningKey.filter(name__in=list(names))}
        for name in names:
            if name not in rows:
                raise BadRequest(f"no signing key named {name!r}", code="no_such_key")
            if rows[name].purpose != "sign":
                raise BadRequest(
                    f"key {name!r} is a time-stamping key; grant the timestamp scope instead",
                    code="bad_keys",
                )
        return names

    @staticmethod
    async def _chain_writers(owner: str, names: Iterable[str]) -> tuple[str, ...]:
        """Live clients other than ``owner`` that may read and extend its custody chains."""
        chosen = split_names(names)
        if owner in chosen:
            raise BadRequest(
                "a client always reads and extends its own chains; list other clients",
                code="bad_chain_writers",
            )
        live = {c.name for c in await ApiClient.filter(name__in=list(chosen), revoked=False)}
        missing = [n for n in chosen if n not in live]
        if missing:
            raise BadRequest(f"no live API client named {missing[0]!r}", code="bad_chain_writers")
        return chosen

    @staticmethod
    def _rate(rate: int) -> int:
        if not 0 <= rate <= MAX_RATE:
            raise BadRequest(
                f"rate must be 0 (unlimited) to {MAX_RATE} per minute", code="bad_rate"
            )
        return rate

    async def _record(
        self, client: ApiClient, change: str, fields: list[str], token: str | None = None
    ) -> None:
        await queue_entry(
            self._ledger,
            "client.changed",
            client=client.name,
            actor=self._actor,
            change=change,
            fields=sorted(fields),
            scopes=list(client.scopes),
            keys=list(client.keys),
            rate_per_minute=client.rate_per_minute,
            cert_sha256=client.cert_fingerprint,
            chain_writers=list(client.chain_writers) or None,
            token=token,
            source=self._source,
        )
