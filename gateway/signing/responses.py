"""Signing-API response bodies (sign, verify, CMS): the handlers build them with these
models, and the OpenAPI document describes them with the same classes."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, WithJsonSchema

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


Sha256Hex = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


class KeyVersionView(ResponseModel):
    """One version of a named key: its public key and certificate."""

    version: Annotated[int, Field(ge=1)]
    status: Literal["active", "retired"]
    created_at: AwareDatetime | None = None
    retired_at: AwareDatetime | None = None
    public_key_pem: str
    spki_sha256: Sha256Hex | None = None
    certificate_pem: str
    certificate_sha256: Sha256Hex | None = None
    certificate_chain_pem: str | None = None


class KeyView(ResponseModel):
    """A named key with its versions."""

    name: str
    algorithm: Algorithm
    purpose: Literal["sign", "timestamp"]
    status: Literal["active", "retired"]
    current_version: int | None = None
    versions: list[KeyVersionView]


class KeyList(ResponseModel):
    """The named keys visible to the caller."""

    keys: list[KeyView]


class LinkView(ResponseModel):
    """One anchored link of a custody chain, with its ledger entry and receipt."""

    record: UUID
    owner: Annotated[str | None, Field(description="the client whose chain this is")] = None
    subject: str
    subject_sha256: Sha256Hex | None = None
    sequence: Annotated[int, Field(ge=1)]
    kind: str
    hash: HashName | None = None
    digest: Base64Text
    metadata: dict[str, Any] | None = None
    metadata_sha256: Sha256Hex | None = None
    client: str | None = None
    created_at: AwareDatetime | None = None
    previous: str | None = None
    rule: Annotated[str | None, Field(description="the custody rule it was checked by")] = None
    rule_version: int | None = None
    handover: Annotated[str | None, Field(description="the two-party hand-over")] = None
    entry: Annotated[str, Field(description="the exact ledger entry (canonical JSON)")]
    leaf_hash: Sha256Hex
    index: int | None = None
    receipt: Annotated[str | None, Field(description="c2sp.org/tlog-proof")] = None


class ChainPage(ResponseModel):
    """A page of a subject's custody chain, in order."""

    owner: str
    subject: str
    links: list[LinkView]
    next_after: int | None
