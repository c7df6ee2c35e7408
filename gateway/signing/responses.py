"""Signing-API response bodies (sign, verify, CMS): the handlers build them with these
models, and the OpenAPI document describes them with the same classes."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema

from gateway.http.models import ResponseModel
from gateway.signing.requests import BASE64_SCHEMA, Encoding, HashName

Base64Text = Annotated[str, WithJsonSchema(BASE64_SCHEMA)]
Algorithm = Literal["ec-p256", "ed25519", "rsa-3072"]


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


class SignedWith(ResponseModel):
    """The key version that signed."""

    key: str
    version: Annotated[int, Field(ge=1)]
    algorithm: Algorithm


class SignResult(SignedWith):
    """One signature and what it covers."""

    digest: Base64Text
    hash: HashName
    format: Encoding
    signature: Base64Text


class BatchItemResult(ResponseModel):
    """One batch item: its signature, or the error that item alone got."""

    index: Annotated[int, Field(ge=0)]
    digest: Base64Text | None = None
    hash: HashName | None = None
    format: Encoding | None = None
    signature: Base64Text | None = None
    error: str | None = None
    message: str | None = None


class BatchResult(SignedWith):
    """A batch's results, in the order of its items."""

    results: list[BatchItemResult]


class VerifyResult(ResponseModel):
    """Whether the signature is valid, and under which version (``null`` if none)."""

    key: str
    valid: bool
    version: int | None


class CmsResult(SignedWith):
    """A detached CMS SignedData in base64 (when the client accepts only JSON)."""

    hash: HashName
    digest: Base64Text
    cms: Base64Text
