"""JSON answer of the oversight log API, as models (the OpenAPI schema is generated from them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from gateway.http.models import ResponseModel, Timestamp


class OversightActionView(ResponseModel):
    """One look at the trail, the alerts or the ledger by an officer, auditor or admin."""

    id: int
    at: Annotated[Timestamp, Field(description="RFC 3339 UTC, milliseconds")]
    actor: Annotated[str, Field(examples=["person:olivia"])]
    view: Annotated[
        str,
        Field(description="trail, trail.export, alerts, activity, ledger.verify, oversight, ..."),
    ]
    filters: Annotated[
        dict[str, str],
        Field(description="the filters used; a long or non-ASCII value as sha256:<32 hex>"),
    ]
    node: str
    ledger_index: Annotated[
        int | None,
        Field(description="index of the oversight.viewed entry; null until integrated"),
    ]


class OversightPage(ResponseModel):
    """A page of oversight actions, newest first."""

    actions: list[OversightActionView]
    next_cursor: str | None
