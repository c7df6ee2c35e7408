"""JSON answers of the ledger API (reads, proofs, witnesses), as models.

The OpenAPI schemas are generated from these classes; schemathesis checks the
server's answers against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, WithJsonSchema

from gateway.http.models import ResponseModel

Count = Annotated[int, Field(ge=0)]
Sha256Hex = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
Base64Text = Annotated[str, WithJsonSchema({"type": "string", "contentEncoding": "base64"})]


class CheckpointView(ResponseModel):
    """The latest signed checkpoint."""

    size: Count
    root: Base64Text
    note: str


class LogKeyView(ResponseModel):
    """The log's checkpoint verification key (C2SP signed-note vkey)."""

    origin: str
    name: str | None = None
    algorithm: Annotated[
        Literal["Ed25519", "ECDSA P-256"],
        Field(description="signed-note type 0x01 (Ed25519) or 0x02 (ECDSA P-256)"),
    ]
    note_signature_type: Annotated[
        Literal[1, 2], Field(description="the signed-note signature type byte")
    ]
    key_id: str | None = None
    public_key: Base64Text
    vkey: str


class EntryView(ResponseModel):
    """One ledger entry with its leaf hash."""

    index: Count
    entry: Annotated[dict[str, Any] | None, Field(description="the entry's JSON")]
    leaf_hash: Sha256Hex
    data: Annotated[Base64Text | None, Field(description="the raw entry, when it is not JSON")] = (
        None
    )


class EntryOpening(ResponseModel):
    """An entry with its opening (the values and salts of its committed fields)."""

    index: Count
    leaf_hash: Sha256Hex
    entry: Annotated[str, Field(description="the exact entry bytes (UTF-8)")]
    opening: Annotated[dict[str, Any], Field(description="fields and salts")]
    fields: Annotated[dict[str, Any], Field(description="the opened entry")]


class InclusionProofView(ResponseModel):
    """RFC 9162 inclusion proof."""

    index: Count
    size: Count
    leaf_hash: Sha256Hex
    root: Base64Text
    proof: list[Base64Text]
    checkpoint: str | None = None


class ConsistencyProofView(ResponseModel):
    """RFC 9162 consistency proof."""

    old: Count
    new: Count
    old_root: Base64Text
    new_root: Base64Text
    proof: list[Base64Text]
    checkpoint: str | None = None


class WitnessView(ResponseModel):
    """One witness: the size it cosigned, its lag and last error (address and error text
    only for who may watch the node; ``null`` for anyone else)."""

    name: str
    url: str | None
    size: Count
    lag: Count
    last_error: str | None
    last_attempt_at: AwareDatetime | None = None
    last_success_at: AwareDatetime | None = None


class WitnessesView(ResponseModel):
    """Finality (k-of-n witness quorum) and each witness's state."""

    quorum: Count
    latest_size: Count
    final_size: int | None
    final_lag: Count | None = None
    witnesses: list[WitnessView]
    cosigning_latency: dict[str, Any] | None = None
