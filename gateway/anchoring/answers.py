"""JSON answers of the anchoring API, as models (the OpenAPI schemas are generated from them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.http.models import ResponseModel, Timestamp


class AnchorCheckView(ResponseModel):
    """One anchoring and whether its token and checkpoint still hold."""

    id: int
    size: Annotated[int, Field(ge=0)]
    root: str
    tsa: str
    gen_time: Timestamp
    token_sha256: str | None = None
    token_verifies: bool
    token_problem: str | None = None
    tree_consistent: bool
    tree_problem: str | None = None
    reply: str | None = None
    checkpoint: str | None = None


class AnchorList(ResponseModel):
    """The configured TSAs and the newest anchorings."""

    tsas: list[str]
    anchors: list[AnchorCheckView]


class TsaOutcomeView(ResponseModel):
    """What one TSA did with the newest checkpoint."""

    tsa: str
    state: Literal["anchored", "already", "failed"]
    size: Annotated[int, Field(ge=0)]
    root: str
    gen_time: Timestamp | None = None
    token_sha256: str | None = None
    error: str | None = None


class AnchorResults(ResponseModel):
    """One result per configured TSA."""

    results: list[TsaOutcomeView]
