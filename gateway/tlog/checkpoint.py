"""C2SP transparency-log checkpoints (c2sp.org/tlog-checkpoint) and Ed25519 cosignatures.

A checkpoint is the text of a signed note::

    <origin>
    <tree size, decimal, no leading zeroes>
    <root hash, base64>
    [extension lines...]

Cosignatures follow c2sp.org/tlog-cosignature, Ed25519 version (key type
0x04): the cosigner signs ``"cosignature/v1\\ntime <t>\\n" || checkpoint
text`` and the signature line carries ``key ID || uint64_be(t) || sig``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.tlog.note import (
    ED25519_SIGNATURE_SIZE,
    MAX_NOTE_SIZE,
    Note,
    NoteError,
    NoteVerificationError,
    Signature,
    SignFunc,
    check_no_control_chars,
    cosignature_key_id,
    decode_hash,
    decode_utf8,
    ed25519_verifies,
    load_public_key,
    matching_signatures,
    parse_decimal,
    parse_note,
    shorten,
    verify_note,
)

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "CheckpointError",
    "cosignature_message",
    "cosignature_timestamp",
    "format_cosignature",
    "open_signed_checkpoint",
    "parse_checkpoint",
    "sign_cosignature",
    "verify_cosignature",
]

MAX_TREE_SIZE = 2**64 - 1
MAX_TIMESTAMP = 2**63 - 1
"""Largest cosignature timestamp the spec allows."""
COSIGNATURE_HEADER = "cosignature/v1"
_TIMESTAMP_SIZE = 8
_ROOT_SIZE = 32


class CheckpointError(NoteError):
    """A checkpoint or cosignature is malformed, or is not for the expected log."""

    code = "invalid_checkpoint"


def _check_line(value: str, what: str) -> None:
    if not value:
        raise CheckpointError(f"the checkpoint {what} must not be empty")
    if "\n" in value:
        raise CheckpointError(f"the checkpoint {what} must be a single line")
    check_no_control_chars(value, f"the checkpoint {what}", CheckpointError)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise CheckpointError(f"the checkpoint {what} is not encodable as UTF-8")


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(
                f"the tree size {self.size} is outside 0..{MAX_TREE_SIZE}",
            )
        if len(self.root_hash) != _ROOT_SIZE:
            raise CheckpointError(
                f"the root hash must be {_ROOT_SIZE} bytes, not {len(self.root_hash)}"
            )
        for number, ext in enumerate(self.extensions, start=1):
            _check_line(ext, f"extension line {number}")

    def to_text(self) -> str:
        """Return the note text: origin, size, base64 root, extensions, final newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly (the text only, without signature lines)."""
    text = decode_utf8(text, "the checkpoint", MAX_NOTE_SIZE, CheckpointError)
    if not text.endswith("\n"):
        raise CheckpointError("the checkpoint text must end with a newline")
    check_no_control_chars(text, "the checkpoint", CheckpointError)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            "a checkpoint has at least three lines: origin, tree size and root hash"
        )
    for number, line in enumerate(lines, start=1):
        if not line:
            raise CheckpointError(f"checkpoint line {number} is empty; no line may be empty")
    origin, size_text, root_text, *extensions = lines
    size = parse_decimal(size_text, "the checkpoint tree size", CheckpointError)
    root = decode_hash(root_text, "the checkpoint root hash", CheckpointError)
    return Checkpoint(origin, size, root, tuple(extensions))


def check_checkpoint_note(text: str, what: str, error: type[NoteError]) -> None:
    """Check that ``text`` is a well-formed signed note holding a checkpoint (unverified)."""
    try:
        parse_checkpoint(parse_note(text).text)
    except NoteError as exc:
        raise error(f"{what}: {exc.message}") from None


def open_signed_checkpoint(
    note_text: str | bytes, origin: str, log_name: str, log_public_key: bytes
) -> tuple[Checkpoint, Note]:
    """Parse a signed checkpoint, verify the log's signature and check its origin."""
    note = parse_note(note_text)
    verify_note(note, log_name, log_public_key)
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise CheckpointError(
            f"the checkpoint is for log {shorten(checkpoint.origin, 100)}, "
            f"not the expected {origin!r}"
        )
    return checkpoint, note


# --- cosignatures ------------------------------------------------------------------------


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CheckpointError(f"the cosignature timestamp {timestamp} is outside 0..2^63-1")


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the bytes an Ed25519 cosigner signs for ``checkpoint_text`` at ``timestamp``."""
    _check_timestamp(timestamp)
    parse_checkpoint(checkpoint_text)
    header = f"{COSIGNATURE_HEADER}\ntime {timestamp}\n"
    return header.encode("ascii") + checkpoint_text.encode("utf-8")


def format_cosignature(name: str, key_id: bytes, timestamp: int, sig64: bytes) -> Signature:
    """Wrap a cosigner's 64-byte Ed25519 signature made at ``timestamp`` as a note signature."""
    _check_timestamp(timestamp)
    if len(sig64) != ED25519_SIGNATURE_SIZE:
        raise CheckpointError(
            f"the cosigner returned {len(sig64)} bytes; an Ed25519 signature is "
            f"{ED25519_SIGNATURE_SIZE} bytes"
        )
    return Signature(name, bytes(key_id), timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + sig64)


def sign_cosignature(
    checkpoint_text: str, name: str, key_id: bytes, timestamp: int, sign: SignFunc
) -> Signature:
    """Cosign ``checkpoint_text`` at ``timestamp`` with the callback ``sign``."""
    message = cosignature_message(checkpoint_text, timestamp)
    return format_cosignature(name, key_id, timestamp, sign(message))


def cosignature_timestamp(sig: Signature) -> int:
    """Return the timestamp inside an Ed25519 cosignature (not verifying it)."""
    if len(sig.signature) != _TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
        raise CheckpointError(
            f"the cosignature from {shorten(sig.name)} is {len(sig.signature)} bytes; an Ed25519 "
            f"cosignature is {_TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE} bytes"
        )
    timestamp = int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise CheckpointError(
            f"the cosignature from {shorten(sig.name)} has a timestamp above 2^63-1"
        )
    return timestamp


def verify_cosignature(
    note: Note | Sequence[Signature],
    checkpoint_text: str,
    name: str,
    public_key: bytes,
    *,
    not_after: int | None = None,
) -> int:
    """Verify the Ed25519 cosignature of (``name``, ``public_key``); return its timestamp.

    ``note`` is the cosigned note, or just signature lines (e.g. a witness
    response) for ``checkpoint_text``. Lines from other keys are ignored;
    every line naming this cosigner must verify. With ``not_after``, a
    timestamp later than it is rejected.
    """
    if isinstance(note, Note):
        if note.text != checkpoint_text:
            raise NoteVerificationError("the cosigned note's text is not the given checkpoint")
        signatures: Sequence[Signature] = note.signatures
    else:
        signatures = note
    key_id = cosignature_key_id(name, public_key)
    key = load_public_key(public_key)
    parse_checkpoint(checkpoint_text)
    found = matching_signatures(signatures, name, key_id)
    if not found:
        raise NoteVerificationError(
            f"the checkpoint carries no cosignature from {name}+{key_id.hex()}"
        )
    timestamps: list[int] = []
    for sig in found:
        try:
            timestamp = cosignature_timestamp(sig)
        except CheckpointError as exc:
            raise NoteVerificationError(exc.message) from None
        message = cosignature_message(checkpoint_text, timestamp)
        if not ed25519_verifies(key, sig.signature[_TIMESTAMP_SIZE:], message):
            raise NoteVerificationError(
                f"the cosignature from {name}+{key_id.hex()} does not verify: the checkpoint "
                "or timestamp was altered, or another key signed it"
            )
        if not_after is not None and timestamp > not_after:
            raise NoteVerificationError(
                f"the cosignature from {name} is dated {timestamp}, later than {not_after}"
            )
        timestamps.append(timestamp)
    return timestamps[0]
