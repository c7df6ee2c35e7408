"""JSON answers of the custody API, as models (the OpenAPI schemas are generated from them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from gateway.http.models import ResponseModel, Timestamp

Sha256Hex = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


class StoredRule(ResponseModel):
    """One stored version of a custody rule."""

    name: str
    version: Annotated[int, Field(ge=1)]
    sha256: Sha256Hex
    document: dict[str, Any]
    actor: str | None = None
    created_at: Timestamp | None = None


class RuleList(ResponseModel):
    """The newest version of every rule."""

    rules: list[StoredRule] | None = None


class RuleVersions(ResponseModel):
    """Every version of one rule, oldest first."""

    versions: list[StoredRule] | None = None


class RuleItems(ResponseModel):
    """Items under a rule that are stuck or out of rule."""

    rule: str
    items: list[Any]


class HandoverView(ResponseModel):
    """A two-party hand-over: its parties, the document both sign, its state."""

    handover: UUID
    owner: str
    subject: str | None = None
    status: Literal["pending", "anchoring", "anchored", "refused"]
    giver: str
    receiver: str
    document: Annotated[dict[str, Any], Field(description="what both parties sign (its SHA-256)")]
    sha256: Sha256Hex
    signatures: dict[str, Any] | None = None
    record: str | None = None
    created_at: Timestamp | None = None
    link: Annotated[
        dict[str, Any] | None, Field(description="the anchored link, once both signed")
    ] = None


class HandoverList(ResponseModel):
    """Pending hand-overs."""

    handovers: list[HandoverView] | None = None


class ChainExport(ResponseModel):
    """A custody chain with its rule, state, holder, hand-overs and alerts."""

    format: Literal["sekisho.custody.export/v1"]
    owner: str
    subject: str
    links: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    handovers: list[HandoverView]
    state: str | None = None
    holder: str | None = None
    pending_handovers: list[HandoverView] | None = None
    alerts: list[dict[str, Any]] | None = None
    rule: dict[str, Any] | None = None
    overdue: str | None = None
