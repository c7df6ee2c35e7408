"""Signatures, verification, CMS and RFC 3161 time-stamps with named token keys.

Every signature leaves the gateway only after it verified against the key
version's certificate and its ``signature.issued`` ledger entry (client, key,
version, digest) was durably queued; if the ledger cannot record it, the
caller gets 503 and the signature is dropped (fail closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.auth.identity import Identity
from gateway.errors import SekishoError, Unavailable
from gateway.signing._signed_data import default_hash
from gateway.signing.cms import build_detached_signed_data
from gateway.signing.keymgmt import Recorder
from gateway.signing.named_keys import KeyPurposeError, KeyRegistry, KeyVersion
from gateway.signing.requests import CmsInput, SignInput
from gateway.signing.token_signer import TokenMessageSigner
from gateway.signing.tsp import (
    TimestampRequestError,
    build_timestamp_response,
    parse_timestamp_request,
    rejection_response,
)
from hsm import HsmError, KeyAlgorithm, SignRequest, verify_signature

SERIAL_BITS = 128


@dataclass(frozen=True)
class Signature:
    """One signature and what it covers."""

    signature: bytes
    digest: bytes
    hash_name: str
    encoding: str


@dataclass(frozen=True)
class CmsSignature:
    """A detached CMS SignedData and the content digest it signs."""

    key: KeyVersion
    der: bytes
    digest: bytes
    hash_name: str


def new_serial() -> int:
    """A time-stamp serial: 128 random bits, never zero (docs/signing.md explains why)."""
    return secrets.randbelow((1 << SERIAL_BITS) - 1) + 1


class SignatureFailed(Unavailable):
    """The token returned a signature that does not verify; it is never released."""

    code = "signature_check_failed"


class SigningService:
    """The signing API's operations, for an authenticated API client."""

    def __init__(
        self, registry: KeyRegistry, ledger: Recorder, *, tsa_key: str, tsa_policy: str
    ) -> None:
        self.registry = registry
        self._ledger = ledger
        self._tsa_key = tsa_key
        self._tsa_policy = tsa_policy

    async def signing_key(self, caller: Identity, name: str) -> KeyVersion:
        """The active version of a key the caller may use (allow-list checked first)."""
        caller.require_key(name)
        return await self.registry.active(name, "sign")

    # ----- raw signatures ----------------------------------------------------------

    async def sign(
        self, caller: Identity, name: str, items: Sequence[SignInput]
    ) -> tuple[KeyVersion, list[Signature | SekishoError | HsmError]]:
        """Sign each item with the key's active version; per-item failures are returned."""
        key = await self.signing_key(caller, name)
        raw = await self.registry.token.sign_many([_request(key, item) for item in items])
        if raw and all(isinstance(r, HsmError) for r in raw):
            first = raw[0]
            assert isinstance(first, HsmError)
            raise first
        results: list[Signature | SekishoError | HsmError] = []
        for item, signature in zip(items, raw, strict=True):
            if isinstance(signature, HsmError):
                results.append(signature)
            elif not verifies(key, item, signature):
                results.append(SignatureFailed("the token returned a signature that fails"))
            else:
                results.append(Signature(signature, item.digest, item.hash_name, item.encoding))
        await self._record_all(
            [
                _entry(caller, key, kind=item.kind, signed=result)
                for item, result in zip(items, results, strict=True)
                if isinstance(result, Signature)
            ]
        )
        return key, results

    async def verify(
        self, caller: Identity, name: str, item: SignInput, signature: bytes, version: int | None
    ) -> int | None:
        """The version whose key verifies ``signature``, or None; retired versions count."""
        caller.require_key(name)
        key = await self.registry.get(name)
        if key.purpose != "sign":
            raise KeyPurposeError(f"key {name!r} is a time-stamping key")
        candidates = [key.version(version)] if version is not None else reversed(key.versions)
        for candidate in candidates:
            if verifies(candidate, item, signature):
                return candidate.version
        return None

    # ----- CMS ------------------------------------------------------------------------

    async def cms(self, caller: Identity, name: str, request: CmsInput) -> CmsSignature:
        """A detached CMS SignedData over the data (or its digest) with the key's active version."""
        key = await self.signing_key(caller, name)
        hash_name = request.hash_name or default_hash(key.cms_algorithm)
        signer = TokenMessageSigner(
            self.registry.token, key, chain=(await self.registry.ca_certificate(),)
        )
        der = await build_detached_signed_data(
            signer, data=request.data, digest=request.digest, hash_name=hash_name
        )
        digest = request.digest or hashlib.new(hash_name, request.data or b"").digest()
        await self._record_all(
            [_entry(caller, key, kind="cms", signed=Signature(b"", digest, hash_name, "der"))]
        )
        return CmsSignature(key, der, digest, hash_name)

    # ----- RFC 3161 ---------------------------------------------------------------------

    async def timestamp(self, caller: Identity, query: bytes) -> bytes:
        """A DER TimeStampResp: granted and ledgered, or a rejection naming the failure."""
        try:
            request = parse_timestamp_request(query)
        except TimestampRequestError as exc:
            return exc.response()
        if request.policy is not None and request.policy != self._tsa_policy:
            return rejection_response(
                "unacceptedPolicy",
                f"policy {request.policy} is not offered; use {self._tsa_policy}",
            )
        key = await self._tsa()
        signer = TokenMessageSigner(
            self.registry.token, key, chain=(await self.registry.ca_certificate(),)
        )
        serial = new_serial()
        reply = await build_timestamp_response(
            request, signer, policy_oid=self._tsa_policy, serial=serial, include_tsa_name=True
        )
        signed = Signature(b"", request.digest, request.hash_name, "der")
        await self._record_all(
            [_entry(caller, key, kind="timestamp", signed=signed, serial=f"{serial:032x}")]
        )
        return reply

    async def _tsa(self) -> KeyVersion:
        try:
            return await self.registry.active(self._tsa_key, "timestamp")
        except SekishoError as exc:
            raise Unavailable(f"time-stamping is not available: {exc.message}") from None

    async def _record_all(self, entries: list[dict[str, Any]]) -> None:
        """Queue every entry (group-committed together); fail closed."""
        if not entries:
            return
        outcomes = await asyncio.gather(
            *(self._ledger.record("signature.issued", **fields) for fields in entries),
            return_exceptions=True,
        )
        if any(isinstance(o, BaseException) for o in outcomes):
            raise Unavailable("the ledger cannot record signatures right now; nothing was issued")


def _request(key: KeyVersion, item: SignInput) -> SignRequest:
    """The token request: Ed25519 signs the payload itself, the others a digest."""
    if key.algorithm is KeyAlgorithm.ED25519:
        return SignRequest(key.label, item.payload)
    return SignRequest(
        key.label, item.digest, hash_name=item.hash_name, prehashed=True, encoding=item.encoding
    )


def verifies(key: KeyVersion, item: SignInput, signature: bytes) -> bool:
    """True when ``signature`` (in ``item.encoding``) is the key's signature over ``item``."""
    if key.algorithm is KeyAlgorithm.ED25519:
        return verify_signature(key.public_key, signature, item.payload)
    if key.algorithm is KeyAlgorithm.EC_P256 and item.encoding == "raw":
        if len(signature) != 64:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        signature = encode_dss_signature(r, s)
    return verify_signature(
        key.public_key, signature, item.digest, hash_name=item.hash_name, prehashed=True
    )


def _entry(
    caller: Identity, key: KeyVersion, *, kind: str, signed: Signature, serial: str | None = None
) -> dict[str, Any]:
    return {
        "client": caller.name,
        "key": key.name,
        "key_version": key.version,
        "digest": signed.digest.hex(),
        "hash": signed.hash_name,
        "format": signed.encoding,
        "kind": kind,
        "serial": serial,
    }
