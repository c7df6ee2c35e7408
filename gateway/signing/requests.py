"""Signing-API request bodies (already parsed JSON): pydantic models, checked inputs.

The models (:class:`SignItem`, :class:`SignBatch`, :class:`VerifyRequest`,
:class:`CmsRequest`) validate the bodies and are their OpenAPI schemas.
Binary values are base64 (standard or URL-safe alphabet, padding optional).
Unknown fields are refused, so a misspelt option is an error, not a default.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self, cast

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.functional_validators import SkipValidation

from gateway.errors import BadRequest
from gateway.http.models import BodyModel, body_error, validate_body
from gateway.ledger.entries import canonical_json
from gateway.signing.clients import CLIENT_NAME

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
Encoding = Literal["der", "raw"]
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


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


def decode_base64(name: str, value: Any) -> bytes:
    """Base64 (either alphabet, padding optional) to bytes."""
    if not isinstance(value, str) or not _BASE64.fullmatch(value) or len(value) % 4 == 1:
        raise InputError(f"{name!r} must be a base64 string", code="bad_base64")
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{name!r} must be a base64 string", code="bad_base64") from None


def checked_digest(name: str, digest: bytes) -> bytes:
    """A digest of the right length for its hash."""
    size = DIGEST_SIZES[name]
    if len(digest) != size:
        raise InputError(
            f"a {name} digest is {size} bytes, got {len(digest)}", code="bad_digest_length"
        )
    return digest


# ----- the body models: they validate the bodies and are the OpenAPI schemas -------------


def _base64_field(value: Any, info: ValidationInfo) -> bytes:
    try:
        return decode_base64(str(info.field_name), value)
    except InputError as exc:
        raise body_error(exc.code, exc.message) from None


def _required_signature(value: Any, info: ValidationInfo) -> bytes:
    if value is None:
        raise body_error("missing_signature", "'signature' is required")
    return _base64_field(value, info)


BASE64_SCHEMA = {"type": "string", "contentEncoding": "base64", "pattern": f"^{_BASE64.pattern}$"}
Base64 = Annotated[bytes, BeforeValidator(_base64_field), WithJsonSchema(BASE64_SCHEMA)]
"""Base64 text (either alphabet, padding optional), decoded."""
HashName = Literal["sha256", "sha384", "sha512"]
_HASH_ERROR = ("unsupported_hash", "'hash' must be sha256, sha384 or sha512")
_FORMAT_ERROR = ("bad_format", "'format' must be 'der' or 'raw'")
_ONE_INPUT: JsonDict = {"oneOf": [{"required": ["digest"]}, {"required": ["data"]}]}


def _one_input(digest: bytes | None, data: bytes | None) -> None:
    if (digest is None) == (data is None):
        raise body_error("missing_input", "give exactly one of 'digest' and 'data'")


def _digest_length(name: str, digest: bytes) -> None:
    try:
        checked_digest(name, digest)
    except InputError as exc:
        raise body_error(exc.code, exc.message) from None


class SignItem(BodyModel):
    """One thing to sign: a precomputed ``digest`` or ``data`` to hash, exactly one."""

    model_config = ConfigDict(json_schema_extra=_ONE_INPUT)
    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "hash": _HASH_ERROR,
        "format": _FORMAT_ERROR,
    }

    digest: Base64 | None = Field(None, description="precomputed digest (length per 'hash')")
    data: Base64 | None = Field(None, description="data to hash (Ed25519 signs the data itself)")
    hash: HashName | None = Field(None, description="the digest's hash; default sha256")
    format: Encoding | None = Field(
        None,
        description="ECDSA encoding: DER Ecdsa-Sig-Value (default) or raw r||s; "
        "Ed25519/RSA-PSS are the same",
    )

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        _one_input(self.digest, self.data)
        if self.digest is not None:
            _digest_length(self.hash or "sha256", self.digest)
        return self

    def sign_input(self) -> SignInput:
        """The checked input."""
        name = self.hash or "sha256"
        if self.digest is not None:
            return SignInput(self.digest, True, name, self.format or "der")
        assert self.data is not None
        return SignInput(self.data, False, name, self.format or "der")


class SignBatch(BodyModel):
    """A ``batch`` of items (each checked on its own) with default ``hash`` and ``format``.

    The node's limit (``signing.max_batch``) is set by :func:`batch_model`.
    """

    WHAT: ClassVar[str] = "a batch request"
    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = SignItem.FIELD_ERRORS
    MAX_BATCH: ClassVar[int] = 1

    batch: list[SkipValidation[SignItem]]
    hash: HashName | None = Field(None, description="default for items without one")
    format: Encoding | None = Field(None, description="default for items without one")

    @field_validator("batch", mode="wrap")
    @classmethod
    def _batch_size(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            message = f"'batch' must be a list of 1 to {cls.MAX_BATCH} items"
            raise body_error("bad_batch", message) from None

    def items(self) -> list[SignInput | InputError]:
        """Each item checked on its own, with the batch's defaults: an input or its error."""
        defaults = {k: v for k, v in (("hash", self.hash), ("format", self.format)) if v}
        return [_batch_item(item, defaults) for item in self.batch]


@functools.cache
def batch_model(max_batch: int) -> type[SignBatch]:
    """:class:`SignBatch` with 1 to ``max_batch`` items, in validation and in its schema."""
    items = Annotated[list[SkipValidation[SignItem]], Field(min_length=1, max_length=max_batch)]
    namespace = {
        "__module__": __name__,
        "__qualname__": "SignBatch",
        "__doc__": SignBatch.__doc__,
        "__annotations__": {"batch": items},
        "MAX_BATCH": max_batch,
    }
    return cast(type[SignBatch], type("SignBatch", (SignBatch,), namespace))


def _batch_item(item: Any, defaults: Mapping[str, Any]) -> SignInput | InputError:
    try:
        if not isinstance(item, dict):
            raise InputError("a batch item must be a JSON object", code="bad_json")
        merged = {**defaults, **item}
        return validate_body(SignItem, merged, InputError, "a batch item").sign_input()
    except InputError as exc:
        return exc


class VerifyRequest(SignItem):
    """What to verify, the ``signature``, and optionally the key ``version`` to verify with."""

    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        **SignItem.FIELD_ERRORS,
        "signature": ("missing_signature", "'signature' is required"),
        "version": ("bad_version", "'version' must be a positive integer"),
    }

    signature: Annotated[bytes, BeforeValidator(_required_signature), WithJsonSchema(BASE64_SCHEMA)]
    version: Annotated[int, Field(ge=1, lt=2**31)] | None = None


class CmsRequest(BodyModel):
    """Data, or its digest, for a detached CMS signature; ``hash`` defaults to the key's."""

    model_config = ConfigDict(json_schema_extra=_ONE_INPUT)
    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {"hash": _HASH_ERROR}

    digest: Base64 | None = None
    data: Base64 | None = None
    hash: HashName | None = None

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        _one_input(self.digest, self.data)
        if self.digest is not None and self.hash is not None:
            _digest_length(self.hash, self.digest)
        return self

    def cms_input(self) -> CmsInput:
        """The checked input."""
        return CmsInput(self.data, self.digest, self.hash)


_KIND = r"^[a-z0-9][a-z0-9._-]{0,63}$"
MAX_SUBJECT = 256
MAX_METADATA_BYTES = 16 * 1024
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value


class AnchorRequest(BodyModel):
    """A record to anchor in its subject's custody chain (``record.anchored``)."""

    FIELD_ERRORS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "subject": ("bad_subject", f"'subject' must be 1-{MAX_SUBJECT} printable characters"),
        "kind": ("bad_kind", "'kind' must be 1-64 characters of a-z, 0-9, '.', '_' and '-'"),
        "hash": _HASH_ERROR,
        "digest": ("missing_input", "'digest' is required"),
        "metadata": ("bad_metadata", "'metadata' must be a JSON object"),
        "wait": ("bad_parameter", "'wait' must be true or false"),
        "owner": ("bad_owner", "'owner' must be an API client name"),
    }

    subject: Annotated[str, Field(min_length=1, max_length=MAX_SUBJECT)]
    kind: Annotated[str, Field(pattern=_KIND)]
    digest: Base64
    hash: HashName | None = Field(None, description="the digest's hash; default sha256")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=f"at most {MAX_METADATA_BYTES} bytes as canonical JSON"
    )
    wait: Annotated[bool, BeforeValidator(_flag)] | None = None
    owner: Annotated[str, Field(pattern=f"^{CLIENT_NAME.pattern}$")] | None = Field(
        None,
        description="the client whose chain to extend (default: the caller's own); "
        "another client's only if it lists the caller as a chain writer",
    )

    @field_validator("subject")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise body_error("bad_subject", cls.FIELD_ERRORS["subject"][1])
        return value

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(canonical_json(value)) > MAX_METADATA_BYTES:
            message = f"'metadata' is at most {MAX_METADATA_BYTES} bytes as JSON"
            raise body_error("bad_metadata", message)
        return value

    @model_validator(mode="after")
    def _digest_length(self) -> Self:
        _digest_length(self.hash or "sha256", self.digest)
        return self


def sign_request(body: Any, max_batch: int) -> SignInput | list[SignInput | InputError]:
    """A single request, or a ``batch`` whose items fail one by one."""
    if isinstance(body, dict) and "batch" in body:
        return validate_body(batch_model(max_batch), body, InputError).items()
    return validate_body(SignItem, body, InputError).sign_input()


def verify_request(body: Any) -> tuple[SignInput, bytes, int | None]:
    """What to verify, the signature, and optionally the key version to verify against."""
    checked = validate_body(VerifyRequest, body, InputError)
    return checked.sign_input(), checked.signature, checked.version


def cms_request(body: Any) -> CmsInput:
    """Data or digest for a detached CMS signature, and optionally its hash."""
    return validate_body(CmsRequest, body, InputError).cms_input()
