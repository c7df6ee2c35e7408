"""Tests for gateway.tlog.receipt: tlog-proof receipts and their verification."""

from __future__ import annotations

import base64
import contextlib
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from gateway.tlog.checkpoint import Checkpoint, CheckpointError, sign_cosignature
from gateway.tlog.merkle import inclusion_proof_from_leaves, leaf_hash, root_from_leaves
from gateway.tlog.note import (
    Note,
    NoteError,
    NoteVerificationError,
    cosignature_key_id,
    ed25519_key_id,
    format_note,
    sign_note_text,
)
from gateway.tlog.receipt import (
    MAX_PROOF_HASHES,
    LeafHash,
    Receipt,
    ReceiptError,
    format_receipt,
    parse_receipt,
    verify_receipt,
)


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


LOG_NAME = "sekisho.example/ledger"
LOG_KEY = Ed25519PrivateKey.from_private_bytes(b"\x31" * 32)
LOG_PUB = raw_public(LOG_KEY)
WITNESSES = [
    (f"witness{i}.example", Ed25519PrivateKey.from_private_bytes(bytes([0x40 + i]) * 32))
    for i in range(3)
]
ENTRIES = [f"document version {i}".encode() for i in range(11)]
LEAVES = [leaf_hash(e) for e in ENTRIES]


def checkpoint_note(size: int, *, cosigners: int = 0, origin: str = LOG_NAME) -> str:
    cp = Checkpoint(origin, size, root_from_leaves(LEAVES[:size]))
    text = cp.to_text()
    sigs = [sign_note_text(text, LOG_NAME, ed25519_key_id(LOG_NAME, LOG_PUB), LOG_KEY.sign)]
    for name, key in WITNESSES[:cosigners]:
        key_id = cosignature_key_id(name, raw_public(key))
        sigs.append(sign_cosignature(text, name, key_id, 1_700_000_000, key.sign))
    return format_note(Note(text, sigs))


def receipt_for(index: int, size: int, *, cosigners: int = 0) -> Receipt:
    proof = inclusion_proof_from_leaves(index, LEAVES[:size])
    return Receipt(index, proof, checkpoint_note(size, cosigners=cosigners))


def test_error_type() -> None:
    assert issubclass(ReceiptError, NoteError)
    assert ReceiptError("x").code == "invalid_receipt"


def test_every_entry_round_trips_and_verifies() -> None:
    for size in (1, 2, 7, 11):
        note = checkpoint_note(size)
        for index in range(size):
            receipt = Receipt(index, inclusion_proof_from_leaves(index, LEAVES[:size]), note)
            text = format_receipt(receipt)
            parsed = parse_receipt(text.encode("utf-8"))
            assert parsed == receipt
            cp = verify_receipt(parsed, ENTRIES[index], LOG_NAME, LOG_PUB)
            assert cp.size == size
            verify_receipt(parsed, LeafHash(LEAVES[index]), LOG_NAME, LOG_PUB, LOG_NAME)


def test_layout() -> None:
    receipt = dataclasses.replace(receipt_for(3, 5), extra=b"vrf proof")
    text = format_receipt(receipt)
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + base64.b64encode(b"vrf proof").decode()
    assert lines[2] == "index 3"
    assert lines[3 : 3 + len(receipt.proof)] == [
        base64.b64encode(h).decode() for h in receipt.proof
    ]
    assert lines[3 + len(receipt.proof)] == ""
    assert text.endswith(receipt.checkpoint_note)
    assert parse_receipt(text) == receipt


def test_single_entry_tree_has_empty_proof() -> None:
    receipt = receipt_for(0, 1)
    assert receipt.proof == []
    text = format_receipt(receipt)
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    verify_receipt(parse_receipt(text), ENTRIES[0], LOG_NAME, LOG_PUB)


def test_wrong_entry_fails() -> None:
    receipt = receipt_for(3, 11)
    with pytest.raises(ReceiptError, match="not there"):
        verify_receipt(receipt, ENTRIES[4], LOG_NAME, LOG_PUB)
    with pytest.raises(ReceiptError):
        verify_receipt(dataclasses.replace(receipt, index=4), ENTRIES[3], LOG_NAME, LOG_PUB)


def test_corrupt_proof_fails() -> None:
    receipt = receipt_for(3, 11)
    bad = [bytes(32), *receipt.proof[1:]]
    with pytest.raises(ReceiptError):
        verify_receipt(dataclasses.replace(receipt, proof=bad), ENTRIES[3], LOG_NAME, LOG_PUB)
    with pytest.raises(ReceiptError, match="too few"):
        verify_receipt(
            dataclasses.replace(receipt, proof=receipt.proof[:-1]), ENTRIES[3], LOG_NAME, LOG_PUB
        )


def test_index_beyond_tree() -> None:
    receipt = dataclasses.replace(receipt_for(3, 5), index=5)
    with pytest.raises(ReceiptError, match="cannot be in"):
        verify_receipt(receipt, ENTRIES[5], LOG_NAME, LOG_PUB)


def test_wrong_log_key_or_origin() -> None:
    receipt = receipt_for(1, 4)
    other = raw_public(WITNESSES[0][1])
    with pytest.raises(NoteVerificationError):
        verify_receipt(receipt, ENTRIES[1], LOG_NAME, other)
    with pytest.raises(CheckpointError, match="not the expected"):
        verify_receipt(receipt, ENTRIES[1], LOG_NAME, LOG_PUB, "another.example/log")
    foreign = Receipt(1, receipt.proof, checkpoint_note(4, origin="mirror.example/log"))
    with pytest.raises(CheckpointError, match="not the expected"):
        verify_receipt(foreign, ENTRIES[1], LOG_NAME, LOG_PUB)
    verify_receipt(foreign, ENTRIES[1], LOG_NAME, LOG_PUB, "mirror.example/log")


def test_tampered_checkpoint_fails() -> None:
    receipt = receipt_for(1, 4)
    forged = receipt.checkpoint_note.replace("\n4\n", "\n5\n", 1)
    with pytest.raises(NoteVerificationError):
        verify_receipt(dataclasses.replace(receipt, checkpoint_note=forged), b"", LOG_NAME, LOG_PUB)


def _witness_keys(count: int) -> list[tuple[str, bytes]]:
    return [(name, raw_public(key)) for name, key in WITNESSES[:count]]


def test_witness_quorum() -> None:
    receipt = receipt_for(2, 6, cosigners=2)
    witnesses = _witness_keys(3)
    verify_receipt(receipt, ENTRIES[2], LOG_NAME, LOG_PUB, witnesses=witnesses, quorum=2)
    with pytest.raises(NoteVerificationError, match="2 witness cosignatures; 3"):
        verify_receipt(receipt, ENTRIES[2], LOG_NAME, LOG_PUB, witnesses=witnesses, quorum=3)
    # Listing the same witness twice does not count twice.
    twice = [witnesses[0], witnesses[0]]
    with pytest.raises(NoteVerificationError, match="1 witness"):
        verify_receipt(receipt, ENTRIES[2], LOG_NAME, LOG_PUB, witnesses=twice, quorum=2)
    with pytest.raises(ReceiptError, match="cannot be met"):
        verify_receipt(receipt, ENTRIES[2], LOG_NAME, LOG_PUB, witnesses=witnesses, quorum=4)


def test_bad_cosignature_from_known_witness_fails() -> None:
    receipt = receipt_for(2, 6, cosigners=1)
    head, _, last = receipt.checkpoint_note.rstrip("\n").rpartition("\n")
    name, _, b64 = last.removeprefix("— ").partition(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    forged = f"{head}\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    bad = dataclasses.replace(receipt, checkpoint_note=forged)
    with pytest.raises(NoteVerificationError, match="does not verify"):
        verify_receipt(bad, ENTRIES[2], LOG_NAME, LOG_PUB, witnesses=_witness_keys(1), quorum=1)
    # Without the witness in the policy the damaged line is ignored.
    verify_receipt(bad, ENTRIES[2], LOG_NAME, LOG_PUB)


def test_leaf_hash_wrapper_checks_length() -> None:
    with pytest.raises(ReceiptError, match="32 bytes"):
        LeafHash(b"\x00" * 31)


# --- malformed receipts ---------------------------------------------------------------------

_GOOD = format_receipt(receipt_for(3, 11))
_HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(_GOOD.replace("tlog-proof@v1", "tlog-proof@v2"), "start with", id="header"),
        pytest.param(_GOOD.replace("index 3", "index 03"), "leading zero", id="leading-zero"),
        pytest.param(_GOOD.replace("index 3", "index -3"), "decimal", id="negative"),
        pytest.param(_GOOD.replace("index 3", "index  3"), "decimal", id="double-space"),
        pytest.param(_GOOD.replace("index 3", "Index 3"), "index", id="case"),
        pytest.param(_GOOD.replace("index 3\n", ""), "index", id="no-index"),
        pytest.param(_GOOD.replace("@v1\n", "@v1\nextra \n"), "empty", id="empty-extra"),
        pytest.param(_GOOD.replace("@v1\n", "@v1\nextra !!\n"), "base64", id="bad-extra"),
        pytest.param(_GOOD.replace("index 3\n", "index 3\nAAAA\n"), "32-byte", id="short-hash"),
        pytest.param(
            _GOOD.replace("index 3\n", "index 3\n" + (_HASH + "\n") * 65), "at most", id="65-lines"
        ),
        pytest.param(_GOOD.replace("\n\n", "\n", 1), "empty line|base64", id="no-blank"),
        pytest.param(_GOOD[:-1], "checkpoint", id="truncated-note"),
        pytest.param(_GOOD.replace("\n", "\r\n"), "U\\+000D", id="crlf"),
        pytest.param(b"\xff" + _GOOD.encode(), "UTF-8", id="not-utf8"),
        pytest.param("", "start with|empty line", id="empty"),
    ],
)
def test_malformed(text: str | bytes, message: str) -> None:
    with pytest.raises(ReceiptError, match=message):
        parse_receipt(text)


def test_unsigned_checkpoint_body_is_still_checked() -> None:
    head, sep, note = _GOOD.partition("\n\n")
    broken = head + sep + note.replace("\n11\n", "\n011\n", 1)
    with pytest.raises(ReceiptError, match="leading zero"):
        parse_receipt(broken)


def test_format_rejects() -> None:
    receipt = receipt_for(3, 11)
    with pytest.raises(ReceiptError, match="32"):
        format_receipt(dataclasses.replace(receipt, proof=[b"\x00" * 31]))
    with pytest.raises(ReceiptError, match="at most"):
        format_receipt(dataclasses.replace(receipt, proof=[bytes(32)] * (MAX_PROOF_HASHES + 1)))
    with pytest.raises(ReceiptError, match="index"):
        format_receipt(dataclasses.replace(receipt, index=-1))
    with pytest.raises(ReceiptError, match="checkpoint"):
        format_receipt(dataclasses.replace(receipt, checkpoint_note="nope\n"))


# --- properties ---------------------------------------------------------------------------


@given(st.binary(max_size=400))
def test_parse_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ReceiptError):
        parse_receipt(data)


@given(
    st.lists(
        st.sampled_from(
            ["c2sp.org/tlog-proof@v1\n", "index ", "extra ", "0", "7", "\n", _HASH, "AA=", " "]
        ),
        max_size=20,
    ).map("".join),
    st.sampled_from(["", _GOOD.partition("\n\n")[2], "x\n\n— a AAAAAAA=\n"]),
)
def test_parse_structured(head: str, tail: str) -> None:
    try:
        receipt = parse_receipt(head + tail)
    except ReceiptError:
        return
    assert parse_receipt(format_receipt(receipt)) == receipt


@given(st.integers(min_value=1, max_value=11), st.data())
def test_round_trip_property(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    extra = data.draw(st.binary(max_size=40))
    receipt = dataclasses.replace(receipt_for(index, size), extra=extra)
    parsed = parse_receipt(format_receipt(receipt))
    assert parsed == receipt
    verify_receipt(parsed, ENTRIES[index], LOG_NAME, LOG_PUB)
