"""C2SP transparency-log proofs (c2sp.org/tlog-proof): Sekisho's ledger receipts.

::

    c2sp.org/tlog-proof@v1
    [extra <base64 opaque data>]
    index <entry index, decimal>
    <inclusion proof hashes, base64, one a line, leaf's sibling first>
    <empty line>
    <signed checkpoint note, verbatim>

A receipt proves offline that an entry is in the log: check the log's
signature on the checkpoint (and any witness cosignatures policy needs),
then the inclusion proof from the entry's leaf hash to the checkpoint root.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.tlog.checkpoint import (
    Checkpoint,
    check_checkpoint_note,
    open_signed_checkpoint,
    verify_cosignature,
)
from gateway.tlog.merkle import ProofError, leaf_hash, verify_inclusion
from gateway.tlog.note import (
    MAX_NOTE_SIZE,
    NoteError,
    NoteVerificationError,
    check_no_control_chars,
    cosignature_key_id,
    decode_base64,
    decode_hash_lines,
    decode_utf8,
    matching_signatures,
    parse_decimal,
)

__all__ = [
    "HEADER",
    "MAX_EXTRA_SIZE",
    "MAX_PROOF_HASHES",
    "MAX_RECEIPT_SIZE",
    "LeafHash",
    "Receipt",
    "ReceiptError",
    "format_receipt",
    "parse_receipt",
    "verify_receipt",
]

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64
"""An inclusion proof in a tree of fewer than 2**64 entries has at most 64 hashes."""
MAX_EXTRA_SIZE = 64 * 1024
"""Largest extra data accepted, in bytes before base64."""
MAX_RECEIPT_SIZE = MAX_NOTE_SIZE + 128 * 1024
"""Largest receipt accepted, in bytes: a maximal note plus headroom for the rest."""
_HASH_SIZE = 32


class ReceiptError(NoteError):
    """A receipt is malformed or does not prove what it claims."""

    code = "invalid_receipt"


@dataclass
class Receipt:
    """An entry index, its inclusion proof, the signed checkpoint and optional extra data.

    ``extra`` is opaque and unauthenticated; empty means the line is absent.
    """

    index: int
    proof: list[bytes]
    checkpoint_note: str
    extra: bytes = field(default=b"")


@dataclass(frozen=True)
class LeafHash:
    """An already computed RFC 6962 leaf hash, to pass instead of leaf data."""

    value: bytes

    def __post_init__(self) -> None:
        if len(self.value) != _HASH_SIZE:
            raise ReceiptError(f"a leaf hash is {_HASH_SIZE} bytes, not {len(self.value)}")


def _check_receipt(receipt: Receipt) -> None:
    if not 0 <= receipt.index <= 2**64 - 1:
        raise ReceiptError(f"the entry index {receipt.index} is outside 0..2^64-1")
    if len(receipt.proof) > MAX_PROOF_HASHES:
        raise ReceiptError(
            f"the inclusion proof has {len(receipt.proof)} hashes; at most "
            f"{MAX_PROOF_HASHES} are possible"
        )
    for number, h in enumerate(receipt.proof, start=1):
        if len(h) != _HASH_SIZE:
            raise ReceiptError(f"inclusion proof hash {number} is {len(h)} bytes, not 32")
    if len(receipt.extra) > MAX_EXTRA_SIZE:
        raise ReceiptError(f"the extra data is larger than {MAX_EXTRA_SIZE} bytes")


def format_receipt(r: Receipt) -> str:
    """Serialise a receipt; the checkpoint note is checked and copied verbatim."""
    _check_receipt(r)
    check_checkpoint_note(r.checkpoint_note, "the receipt's checkpoint", ReceiptError)
    lines = [HEADER]
    if r.extra:
        lines.append("extra " + base64.b64encode(r.extra).decode("ascii"))
    lines.append(f"index {r.index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in r.proof)
    out = "".join(line + "\n" for line in lines) + "\n" + r.checkpoint_note
    if len(out.encode("utf-8")) > MAX_RECEIPT_SIZE:
        raise ReceiptError(f"the receipt would exceed the {MAX_RECEIPT_SIZE}-byte limit")
    return out


def parse_receipt(text: str | bytes) -> Receipt:
    """Parse a ``c2sp.org/tlog-proof@v1`` receipt strictly (nothing is verified here)."""
    data = decode_utf8(text, "the receipt", MAX_RECEIPT_SIZE, ReceiptError)
    check_no_control_chars(data, "the receipt", ReceiptError)
    head, sep, checkpoint_note = data.partition("\n\n")
    if not sep:
        raise ReceiptError(
            "the receipt has no empty line between the inclusion proof and the checkpoint"
        )
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise ReceiptError(f"a receipt must start with the line {HEADER!r}")
    position = 1
    extra = b""
    if position < len(lines) and lines[position].startswith("extra "):
        extra = decode_base64(lines[position][6:], "the receipt's extra data", ReceiptError)
        if not extra:
            raise ReceiptError("the receipt's extra line is empty; omit the line instead")
        if len(extra) > MAX_EXTRA_SIZE:
            raise ReceiptError(f"the extra data is larger than {MAX_EXTRA_SIZE} bytes")
        position += 1
    if position >= len(lines) or not lines[position].startswith("index "):
        raise ReceiptError("the receipt must have an 'index <n>' line after its header")
    index = parse_decimal(lines[position][6:], "the entry index", ReceiptError)
    proof = decode_hash_lines(
        lines[position + 1 :], "inclusion proof", MAX_PROOF_HASHES, ReceiptError
    )
    check_checkpoint_note(checkpoint_note, "the receipt's checkpoint", ReceiptError)
    return Receipt(index, proof, checkpoint_note, extra)


def verify_receipt(
    receipt: Receipt,
    leaf_data_or_hash: bytes | LeafHash,
    log_name: str,
    log_public_key: bytes,
    origin: str | None = None,
    *,
    witnesses: Sequence[tuple[str, bytes]] = (),
    quorum: int = 0,
) -> Checkpoint:
    """Verify a receipt and return its checkpoint.

    Checks the log's Ed25519 signature and the checkpoint origin (``origin``,
    by default ``log_name``), then the inclusion proof of the entry, given as
    raw leaf data (hashed here) or a ``LeafHash``. With ``quorum`` > 0, at
    least that many of ``witnesses`` (name, Ed25519 public key) must have
    cosigned; a cosignature from a listed witness that fails is an error.
    """
    _check_receipt(receipt)
    if quorum > len(witnesses):
        raise ReceiptError(f"a quorum of {quorum} cannot be met by {len(witnesses)} witnesses")
    expected_origin = log_name if origin is None else origin
    checkpoint, note = open_signed_checkpoint(
        receipt.checkpoint_note, expected_origin, log_name, log_public_key
    )
    cosigners: set[tuple[str, bytes]] = set()
    for name, public_key in witnesses:
        key_id = cosignature_key_id(name, public_key)
        if (name, key_id) in cosigners or not matching_signatures(note.signatures, name, key_id):
            continue
        verify_cosignature(note, note.text, name, public_key)
        cosigners.add((name, key_id))
    cosigned = len(cosigners)
    if cosigned < quorum:
        raise NoteVerificationError(
            f"the checkpoint has {cosigned} witness cosignatures; {quorum} are required"
        )
    if isinstance(leaf_data_or_hash, LeafHash):
        entry_hash = leaf_data_or_hash.value
    else:
        entry_hash = leaf_hash(leaf_data_or_hash)
    if receipt.index >= checkpoint.size:
        raise ReceiptError(
            f"entry {receipt.index} cannot be in the checkpointed tree of {checkpoint.size} entries"
        )
    try:
        verify_inclusion(
            entry_hash, receipt.index, checkpoint.size, receipt.proof, checkpoint.root_hash
        )
    except ProofError as exc:
        raise ReceiptError(exc.message) from exc
    return checkpoint
