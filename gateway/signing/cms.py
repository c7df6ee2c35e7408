"""Detached CMS SignedData (RFC 5652) signed by a token-held key."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from asn1crypto import cms

from gateway.errors import BadRequest
from gateway.signing._signed_data import DIGEST_SIZES, build_signed_data, default_hash
from gateway.signing.message_signer import KeyAlgorithm, MessageSigner


class CmsError(BadRequest):
    """The caller's input for a CMS signature is unusable."""

    code = "cms_bad_request"


async def build_detached_signed_data(
    signer: MessageSigner,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    hash_name: str | None = None,
    signing_time: datetime | None = None,
    content_type: str = "data",
) -> bytes:
    """DER ContentInfo(SignedData) over ``data`` (or its precomputed ``digest``), detached.

    ``hash_name`` is sha256, sha384 or sha512; unset it means sha256, or sha512
    for Ed25519, which RFC 8419 requires. ``content_type`` is the eContentType,
    ``data`` or a dotted OID. ``signing_time`` must be timezone-aware; it
    defaults to now.
    """
    name = _hash_name(signer.algorithm, hash_name)
    return await build_signed_data(
        signer,
        hash_name=name,
        content_type=_content_type(content_type),
        message_digest=_message_digest(name, data, digest),
        signing_time=_signing_time(signing_time),
    )


def _hash_name(algorithm: KeyAlgorithm, hash_name: str | None) -> str:
    """The SignerInfo digest algorithm, checked against the key type."""
    if hash_name is None:
        return default_hash(algorithm)
    if hash_name not in DIGEST_SIZES:
        raise CmsError(f"unsupported hash {hash_name!r}; use sha256, sha384 or sha512")
    if algorithm == "ed25519" and hash_name != "sha512":
        raise CmsError("Ed25519 CMS signatures use sha512 (RFC 8419); leave hash_name unset")
    return hash_name


def _message_digest(hash_name: str, data: bytes | None, digest: bytes | None) -> bytes:
    """The messageDigest value: hash ``data``, or check the length of ``digest``."""
    if (data is None) == (digest is None):
        raise CmsError("give exactly one of data or digest")
    if data is not None:
        return hashlib.new(hash_name, data).digest()
    assert digest is not None
    expected = DIGEST_SIZES[hash_name]
    if len(digest) != expected:
        raise CmsError(f"a {hash_name} digest is {expected} bytes, got {len(digest)}")
    return digest


def _content_type(content_type: str) -> str:
    """The eContentType as a dotted OID."""
    try:
        dotted: str = cms.ContentType(content_type).dotted
    except ValueError as exc:
        raise CmsError(f"content_type {content_type!r} is neither 'data' nor an OID") from exc
    return dotted


def _signing_time(signing_time: datetime | None) -> datetime:
    """The signingTime value, now by default; naive datetimes are refused."""
    if signing_time is None:
        return datetime.now(UTC)
    if signing_time.tzinfo is None or signing_time.utcoffset() is None:
        raise CmsError("signing_time must be timezone-aware")
    return signing_time
