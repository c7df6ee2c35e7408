"""JSON answer of the access trail API, as models (the OpenAPI schema is generated from them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.http.models import ResponseModel, Timestamp


class TrailEventView(ResponseModel):
    """One access decision."""

    id: int
    at: Annotated[Timestamp, Field(description="RFC 3339 UTC, milliseconds")]
    actor: Annotated[str, Field(examples=["person:alice"])]
    document_id: str | None = None
    version: int | None = None
    action: Annotated[str, Field(examples=["download"])]
    outcome: Literal["granted", "denied"]
    reason: Annotated[str, Field(examples=["compartments"])]
    source: Annotated[str | None, Field(description="client address")] = None
    node: str
    ledger_index: Annotated[
        int | None,
        Field(description="index of the document.accessed entry; null until integrated"),
    ]


class TrailPage(ResponseModel):
    """A page of events, newest first."""

    events: list[TrailEventView]
    next_cursor: str | None
