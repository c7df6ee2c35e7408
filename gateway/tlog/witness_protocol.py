"""Bodies of the C2SP tlog-witness ``add-checkpoint`` call (c2sp.org/tlog-witness).

Request (``POST <submission prefix>/add-checkpoint``)::

    old <previous size, decimal>
    <consistency proof hashes, base64, one a line, at most 63>
    <empty line>
    <signed checkpoint note>

Responses: 200 with one or more cosignature lines (``— name base64``), or
409 with the witness's latest cosigned size as ``<decimal>\\n`` and the
content type ``text/x.tlog.size``.

Parsing here is syntax only. The witness still has to, in this order of
status codes: know the origin (404), verify the log signature (403), check
``old_size <= checkpoint size`` (400, see ``check_old_size``), compare the
old size with its record (409), then the empty-tree root and the proof (422)
and, for an old size equal to the checkpoint size, the root (409).
:mod:`gateway.witness.core` does exactly that.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.tlog.checkpoint import Checkpoint, check_checkpoint_note
from gateway.tlog.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    NoteError,
    Signature,
    check_no_control_chars,
    decode_hash_lines,
    decode_utf8,
    format_signature_line,
    parse_decimal,
    parse_signature_line,
)

__all__ = [
    "ADD_CHECKPOINT_PATH",
    "MAX_ADD_CHECKPOINT_BODY",
    "MAX_CONSISTENCY_PROOF_LINES",
    "MAX_RESPONSE_BODY",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "WitnessRequestError",
    "WitnessResponseError",
    "check_old_size",
    "format_add_checkpoint",
    "format_add_checkpoint_response",
    "format_size_conflict",
    "origin_hash",
    "parse_add_checkpoint",
    "parse_add_checkpoint_response",
    "parse_size_conflict",
]

ADD_CHECKPOINT_PATH = "add-checkpoint"
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of the 409 Conflict body carrying the witness's latest size."""
MAX_CONSISTENCY_PROOF_LINES = 63
"""The spec forbids clients to send more consistency proof lines than this."""
MAX_ADD_CHECKPOINT_BODY = MAX_NOTE_SIZE + 4096
"""Largest request body accepted: a maximal note plus the old-size and proof lines."""
MAX_RESPONSE_BODY = MAX_NOTE_SIZE
"""Largest cosignature response body accepted from a witness."""


class WitnessRequestError(NoteError):
    """An add-checkpoint request body is malformed (HTTP 400)."""

    code = "invalid_witness_request"


class WitnessResponseError(NoteError):
    """A witness answered with a malformed body (the witness is at fault: HTTP 502)."""

    code = "invalid_witness_response"


@dataclass
class AddCheckpointRequest:
    """The previous size, a consistency proof from it, and the new signed checkpoint."""

    old_size: int
    consistency_proof: list[bytes]
    checkpoint_note: str


def format_add_checkpoint(req: AddCheckpointRequest) -> str:
    """Serialise an add-checkpoint request body."""
    if not 0 <= req.old_size <= 2**64 - 1:
        raise WitnessRequestError(f"the old size {req.old_size} is outside 0..2^64-1")
    if len(req.consistency_proof) > MAX_CONSISTENCY_PROOF_LINES:
        raise WitnessRequestError(
            f"the consistency proof has {len(req.consistency_proof)} hashes; the protocol "
            f"allows at most {MAX_CONSISTENCY_PROOF_LINES}"
        )
    for number, h in enumerate(req.consistency_proof, start=1):
        if len(h) != 32:
            raise WitnessRequestError(f"consistency proof hash {number} is {len(h)} bytes, not 32")
    check_checkpoint_note(req.checkpoint_note, "the submitted checkpoint", WitnessRequestError)
    lines = [f"old {req.old_size}"]
    lines.extend(base64.b64encode(h).decode("ascii") for h in req.consistency_proof)
    out = "".join(line + "\n" for line in lines) + "\n" + req.checkpoint_note
    if len(out.encode("utf-8")) > MAX_ADD_CHECKPOINT_BODY:
        raise WitnessRequestError(f"the request would exceed {MAX_ADD_CHECKPOINT_BODY} bytes")
    return out


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body strictly (signatures are not verified)."""
    text = decode_utf8(body, "the request body", MAX_ADD_CHECKPOINT_BODY, WitnessRequestError)
    check_no_control_chars(text, "the request body", WitnessRequestError)
    head, sep, checkpoint_note = text.partition("\n\n")
    if not sep:
        raise WitnessRequestError(
            "the request body has no empty line between the consistency proof and the checkpoint"
        )
    lines = head.split("\n")
    if not lines[0].startswith("old "):
        raise WitnessRequestError("the request body must start with an 'old <size>' line")
    old_size = parse_decimal(lines[0][4:], "the old size", WitnessRequestError)
    proof = decode_hash_lines(
        lines[1:], "consistency proof", MAX_CONSISTENCY_PROOF_LINES, WitnessRequestError
    )
    check_checkpoint_note(checkpoint_note, "the submitted checkpoint", WitnessRequestError)
    return AddCheckpointRequest(old_size, proof, checkpoint_note)


def check_old_size(req: AddCheckpointRequest, checkpoint: Checkpoint) -> None:
    """Reject an old size above the checkpoint size (the spec's 400 Bad Request)."""
    if req.old_size > checkpoint.size:
        raise WitnessRequestError(
            f"the old size {req.old_size} is larger than the checkpoint size {checkpoint.size}"
        )


# --- responses -------------------------------------------------------------------------------


def format_add_checkpoint_response(signatures: Sequence[Signature]) -> str:
    """Return the 200 response body: one note signature line per cosignature."""
    if not signatures:
        raise NoteError("a witness response needs at least one cosignature")
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"a witness response may carry at most {MAX_SIGNATURES} cosignatures")
    return "".join(format_signature_line(s) for s in signatures)


def parse_add_checkpoint_response(body: bytes | str) -> list[Signature]:
    """Parse a 200 response body into its signature lines (not verified here)."""
    text = decode_utf8(body, "the witness response", MAX_RESPONSE_BODY, WitnessResponseError)
    check_no_control_chars(text, "the witness response", WitnessResponseError)
    if not text:
        raise WitnessResponseError("the witness response holds no cosignature lines")
    if not text.endswith("\n"):
        raise WitnessResponseError("the witness response must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise WitnessResponseError(
            f"the witness response has {len(lines)} lines; at most {MAX_SIGNATURES} are accepted"
        )
    return [parse_signature_line(line, WitnessResponseError) for line in lines]


def format_size_conflict(size: int) -> str:
    """Return the 409 Conflict body: the latest cosigned size and a newline."""
    if not 0 <= size <= 2**64 - 1:
        raise NoteError(f"the tree size {size} is outside 0..2^64-1")
    return f"{size}\n"


def parse_size_conflict(body: bytes | str) -> int:
    """Parse a 409 Conflict body (``text/x.tlog.size``) into the witness's latest size."""
    text = decode_utf8(body, "the witness size response", 64, WitnessResponseError)
    if not text.endswith("\n"):
        raise WitnessResponseError("the witness size response must end with a newline")
    return parse_decimal(text[:-1], "the witness's latest size", WitnessResponseError)


def origin_hash(origin: str) -> str:
    """Return the lowercase hex SHA-256 of ``origin``, as used in monitoring URLs."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()
