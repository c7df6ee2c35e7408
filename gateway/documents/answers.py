"""JSON answers of the documents API and the two-person rule, as models.

The OpenAPI document's response schemas are generated from these classes
(:func:`gateway.http.openapi.json_answer`), and the schemathesis suite checks
every answer the server gives against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from gateway.http.models import ResponseModel

Sha256Hex = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


class VersionView(ResponseModel):
    """One version's metadata (never its content)."""

    version: Annotated[int, Field(ge=1)]
    label: str
    size: Annotated[int, Field(ge=0)]
    filename: str
    media_type: str
    plaintext_sha256: Sha256Hex
    ciphertext_sha256: Sha256Hex
    ledger_index: Annotated[
        int | None,
        Field(ge=0, description="index of the registration entry; null until integrated"),
    ]
    created_by: str
    created_at: AwareDatetime
    destroyed: bool


class DocumentView(ResponseModel):
    """A document at one version the caller is cleared for."""

    id: UUID
    title: str
    tags: list[str]
    label: Annotated[str, Field(description="the label of the version this view is of")]
    current_version: Annotated[
        int, Field(ge=1, description="the newest version the caller is cleared for")
    ]
    created_by: str
    created_at: AwareDatetime
    destroyed: bool
    version: Annotated[VersionView, Field(description="the version this view is of")]
    versions: Annotated[
        list[VersionView] | None,
        Field(description="metadata only: the versions the caller may see"),
    ] = None


class DocumentList(ResponseModel):
    """One page of the documents the caller may see."""

    documents: list[DocumentView]
    count: Annotated[int, Field(ge=0)]


class VersionList(ResponseModel):
    """The versions the caller may see."""

    versions: list[VersionView]


class Destroyed(ResponseModel):
    """A document crypto-shredded: how many versions lost their keys."""

    destroyed_versions: Annotated[int, Field(ge=0)]


class DocumentAnchor(ResponseModel):
    """A version's registration entry, its partial opening and a receipt."""

    index: int
    entry: str
    opening: dict[str, Any] | None
    receipt: str


class FileCheck(ResponseModel):
    """A file compared with a version's anchored hash."""

    document_id: str
    version: Annotated[int, Field(ge=1)]
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256Hex
    anchored_sha256: str
    matches: bool
    catalogue_agrees: bool
    ledger_index: int | None


class ApprovalView(ResponseModel):
    """A two-person request: what it acts on, who asked, its state."""

    id: UUID
    document: UUID
    title: str | None = None
    version: Annotated[int, Field(ge=1, description="the version it acts on")]
    action: Literal["downgrade", "destroy"]
    new_label: Annotated[str | None, Field(description="a downgrade's new label")] = None
    reason: str | None = None
    requested_by: str
    requested_at: AwareDatetime
    expires_at: AwareDatetime
    status: Literal["pending", "approved", "refused", "expired", "stale"]
    decided_by: str | None = None
    decided_at: AwareDatetime | None = None


class ApprovalPending(ResponseModel):
    """The two-person rule applies: the request waits for another officer."""

    approval: ApprovalView


class ApprovalList(ResponseModel):
    """Two-person requests."""

    approvals: list[ApprovalView]


class ApprovalDecision(ResponseModel):
    """A request decided; after an approved action, what it did."""

    approval: ApprovalView
    document: Annotated[
        dict[str, Any] | None, Field(description="after a downgrade: the new version")
    ] = None
    destroyed_versions: Annotated[int | None, Field(ge=0)] = None
