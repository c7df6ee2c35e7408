"""Decoding signing-API request bodies (already parsed JSON) into checked inputs.

Binary values are base64 (standard or URL-safe alphabet, padding optional).
Unknown fields are refused, so a misspelt option is an error, not a default.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.errors import BadRequest

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
Encoding = Literal["der", "raw"]
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_INPUT_FIELDS = frozenset({"digest", "data", "hash", "format"})


class InputError(BadRequest):
    """A request body (or one batch item) is unusable; ``code`` says why."""

    code = "bad_request"


@dataclass(frozen=True)
class SignInput:
    """What to sign or verify: a precomputed digest, or data to hash (or, for Ed25519, sign)."""

    payload: bytes
    is_digest: bool
    hash_name: str
    encoding: Encoding

    @property
    def digest(self) -> bytes:
        """The digest: the payload itself, or ``hash_name`` of the data."""
        if self.is_digest:
            return self.payload
        return hashlib.new(self.hash_name, self.payload).digest()

    @property
    def kind(self) -> str:
        """``digest`` or ``data``, as ledger entries name the input."""
        return "digest" if self.is_digest else "data"


@dataclass(frozen=True)
class CmsInput:
    """Data or its digest for a detached CMS signature; ``hash_name`` None means the default."""

    data: bytes | None
    digest: bytes | None
    hash_name: str | None


def require_object(body: Any, what: str = "the request body") -> Mapping[str, Any]:
    """A JSON object, or InputError."""
    if not isinstance(body, dict):
        raise InputError(f"{what} must be a JSON object", code="bad_json")
    return body


def check_fields(body: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    """Refuse fields other than ``allowed``."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InputError(f"{what} has unknown field(s): {', '.join(unknown)}", code="unknown_field")


def decode_base64(name: str, value: Any) -> bytes:
    """Base64 (either alphabet, padding optional) to bytes."""
    if not isinstance(value, str) or not _BASE64.fullmatch(value) or len(value) % 4 == 1:
        raise InputError(f"{name!r} must be a base64 string", code="bad_base64")
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{name!r} must be a base64 string", code="bad_base64") from None


def hash_name(value: Any, default: str | None = "sha256") -> str | None:
    """sha256, sha384 or sha512 (``default`` when absent)."""
    if value is None:
        return default
    if not isinstance(value, str) or value not in DIGEST_SIZES:
        raise InputError("'hash' must be sha256, sha384 or sha512", code="unsupported_hash")
    return str(value)


def checked_digest(name: str, digest: bytes) -> bytes:
    """A digest of the right length for its hash."""
    size = DIGEST_SIZES[name]
    if len(digest) != size:
        raise InputError(
            f"a {name} digest is {size} bytes, got {len(digest)}", code="bad_digest_length"
        )
    return digest


def _encoding(value: Any) -> Encoding:
    if value is None or value == "der":
        return "der"
    if value == "raw":
        return "raw"
    raise InputError("'format' must be 'der' or 'raw'", code="bad_format")


def _payload(item: Mapping[str, Any], name: str) -> tuple[bytes, bool]:
    has_digest, has_data = item.get("digest") is not None, item.get("data") is not None
    if has_digest == has_data:
        raise InputError("give exactly one of 'digest' and 'data'", code="missing_input")
    if has_digest:
        return checked_digest(name, decode_base64("digest", item["digest"])), True
    return decode_base64("data", item["data"]), False


def sign_input(item: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> SignInput:
    """One thing to sign: ``digest`` or ``data``, with ``hash`` and ``format``."""
    merged = {**(defaults or {}), **item}
    name = hash_name(merged.get("hash"))
    assert name is not None
    payload, is_digest = _payload(merged, name)
    return SignInput(payload, is_digest, name, _encoding(merged.get("format")))


def sign_request(body: Any, max_batch: int) -> SignInput | list[SignInput | InputError]:
    """A single request, or a ``batch`` whose items fail one by one."""
    body = require_object(body)
    if "batch" not in body:
        check_fields(body, _INPUT_FIELDS, "the request")
        return sign_input(body)
    check_fields(body, {"batch", "hash", "format"}, "a batch request")
    items = body["batch"]
    if not isinstance(items, list) or not 1 <= len(items) <= max_batch:
        raise InputError(f"'batch' must be a list of 1 to {max_batch} items", code="bad_batch")
    defaults = {k: body[k] for k in ("hash", "format") if k in body}
    if "hash" in defaults:
        hash_name(defaults["hash"])
    if "format" in defaults:
        _encoding(defaults["format"])
    return [_batch_item(item, defaults) for item in items]


def _batch_item(item: Any, defaults: Mapping[str, Any]) -> SignInput | InputError:
    try:
        checked = require_object(item, "a batch item")
        check_fields(checked, _INPUT_FIELDS, "a batch item")
        return sign_input(checked, defaults)
    except InputError as exc:
        return exc


def verify_request(body: Any) -> tuple[SignInput, bytes, int | None]:
    """What to verify, the signature, and optionally the key version to verify against."""
    body = require_object(body)
    check_fields(body, {*_INPUT_FIELDS, "signature", "version"}, "the request")
    if body.get("signature") is None:
        raise InputError("'signature' is required", code="missing_signature")
    signature = decode_base64("signature", body["signature"])
    version = body.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31
    ):
        raise InputError("'version' must be a positive integer", code="bad_version")
    return sign_input(body), signature, version


def cms_request(body: Any) -> CmsInput:
    """Data or digest for a detached CMS signature, and optionally its hash."""
    body = require_object(body)
    check_fields(body, {"digest", "data", "hash"}, "the request")
    name = hash_name(body.get("hash"), default=None)
    has_digest, has_data = body.get("digest") is not None, body.get("data") is not None
    if has_digest == has_data:
        raise InputError("give exactly one of 'digest' and 'data'", code="missing_input")
    if has_data:
        return CmsInput(decode_base64("data", body["data"]), None, name)
    digest = decode_base64("digest", body["digest"])
    return CmsInput(None, checked_digest(name, digest) if name else digest, name)
