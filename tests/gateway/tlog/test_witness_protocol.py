"""Tests for gateway.tlog.witness_protocol: tlog-witness add-checkpoint bodies."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from gateway.http.errors import format_status
from gateway.tlog.checkpoint import (
    Checkpoint,
    open_signed_checkpoint,
    parse_checkpoint,
    sign_cosignature,
    verify_cosignature,
)
from gateway.tlog.merkle import consistency_proof_from_leaves, leaf_hash, root_from_leaves
from gateway.tlog.note import (
    Note,
    NoteError,
    cosignature_key_id,
    ed25519_key_id,
    format_note,
    parse_note,
    sign_note_text,
)
from gateway.tlog.witness_protocol import (
    MAX_ADD_CHECKPOINT_BODY,
    MAX_CONSISTENCY_PROOF_LINES,
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    WitnessRequestError,
    WitnessResponseError,
    check_old_size,
    format_add_checkpoint,
    format_add_checkpoint_response,
    format_size_conflict,
    origin_hash,
    parse_add_checkpoint,
    parse_add_checkpoint_response,
    parse_size_conflict,
)

# The example request and response bodies of c2sp.org/tlog-witness.
SPEC_PROOF = [
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
]
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Z"
    "hcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/"
    "V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
)
SPEC_REQUEST = "old 20852014\n" + "".join(p + "\n" for p in SPEC_PROOF) + "\n" + SPEC_CHECKPOINT
SPEC_RESPONSE = (
    "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQ"
    "Lrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"
    "— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO"
    "+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n"
    "— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7n"
    "C3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n"
)


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


LOG_NAME = "sekisho.example/ledger"
LOG_KEY = Ed25519PrivateKey.from_private_bytes(b"\x51" * 32)
WITNESS_NAME = "witness.example/w1"
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(b"\x52" * 32)
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(20)]


def signed_checkpoint(size: int) -> str:
    text = Checkpoint(LOG_NAME, size, root_from_leaves(LEAVES[:size])).to_text()
    key_id = ed25519_key_id(LOG_NAME, raw_public(LOG_KEY))
    return format_note(Note(text, [sign_note_text(text, LOG_NAME, key_id, LOG_KEY.sign)]))


def test_error_types() -> None:
    assert issubclass(WitnessRequestError, NoteError)
    assert format_status(WitnessRequestError("x")) == 400
    assert WitnessRequestError("x").code == "invalid_witness_request"
    assert format_status(WitnessResponseError("x")) == 502


def test_spec_example_request() -> None:
    req = parse_add_checkpoint(SPEC_REQUEST.encode("utf-8"))
    assert req.old_size == 20852014
    assert req.consistency_proof == [base64.b64decode(p) for p in SPEC_PROOF]
    assert req.checkpoint_note == SPEC_CHECKPOINT
    assert format_add_checkpoint(req) == SPEC_REQUEST
    cp = parse_checkpoint(parse_note(req.checkpoint_note).text)
    check_old_size(req, cp)


def test_spec_example_response() -> None:
    sigs = parse_add_checkpoint_response(SPEC_RESPONSE.encode("utf-8"))
    assert [s.name for s in sigs] == ["witness.example/w1"] * 2 + ["witness.example/w2"]
    assert all(len(s.signature) == 72 for s in sigs)
    assert format_add_checkpoint_response(sigs) == SPEC_RESPONSE


def test_full_exchange() -> None:
    """Log builds a request, witness parses and cosigns, log verifies the response."""
    old, new = 8, 13
    proof = consistency_proof_from_leaves(old, LEAVES[:new])
    body = format_add_checkpoint(AddCheckpointRequest(old, proof, signed_checkpoint(new)))

    req = parse_add_checkpoint(body.encode("utf-8"))
    cp, note = open_signed_checkpoint(req.checkpoint_note, LOG_NAME, LOG_NAME, raw_public(LOG_KEY))
    check_old_size(req, cp)
    assert req.consistency_proof == proof
    key_id = cosignature_key_id(WITNESS_NAME, raw_public(WITNESS_KEY))
    cosig = sign_cosignature(note.text, WITNESS_NAME, key_id, 1_700_000_123, WITNESS_KEY.sign)
    response = format_add_checkpoint_response([cosig])

    sigs = parse_add_checkpoint_response(response)
    checkpoint_text = parse_note(body.partition("\n\n")[2]).text
    ts = verify_cosignature(sigs, checkpoint_text, WITNESS_NAME, raw_public(WITNESS_KEY))
    assert ts == 1_700_000_123
    # As the spec suggests, the response can be appended to the checkpoint note.
    merged = parse_note(req.checkpoint_note + response)
    assert verify_cosignature(merged, checkpoint_text, WITNESS_NAME, raw_public(WITNESS_KEY)) == ts


def test_zero_old_size_and_nonempty_proof_is_left_to_the_witness() -> None:
    """The spec answers 422, not 400, for a proof sent with old size 0: parsing accepts it."""
    body = "old 0\n" + SPEC_PROOF[0] + "\n\n" + SPEC_CHECKPOINT
    assert parse_add_checkpoint(body.encode()).old_size == 0


def test_old_size_above_checkpoint() -> None:
    req = AddCheckpointRequest(14, [], signed_checkpoint(13))
    cp = parse_checkpoint(parse_note(req.checkpoint_note).text)
    with pytest.raises(WitnessRequestError, match="larger than"):
        check_old_size(req, cp)


def test_proof_line_limit() -> None:
    lines = "".join(SPEC_PROOF[0] + "\n" for _ in range(MAX_CONSISTENCY_PROOF_LINES))
    parse_add_checkpoint(("old 1\n" + lines + "\n" + SPEC_CHECKPOINT).encode())
    too_many = "old 1\n" + lines + SPEC_PROOF[0] + "\n\n" + SPEC_CHECKPOINT
    with pytest.raises(WitnessRequestError, match="at most 63"):
        parse_add_checkpoint(too_many.encode())
    with pytest.raises(WitnessRequestError, match="at most 63"):
        format_add_checkpoint(AddCheckpointRequest(1, [bytes(32)] * 64, SPEC_CHECKPOINT))


def test_body_size_limit() -> None:
    with pytest.raises(WitnessRequestError, match="limit"):
        parse_add_checkpoint(b"old 0\n\n" + b"x" * MAX_ADD_CHECKPOINT_BODY)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(SPEC_REQUEST.replace("old ", "old 0", 1), "leading zero", id="leading-zero"),
        pytest.param(SPEC_REQUEST.replace("old ", "old  ", 1), "decimal", id="double-space"),
        pytest.param(SPEC_REQUEST.replace("old ", "Old ", 1), "old <size>", id="case"),
        pytest.param(SPEC_REQUEST.replace("old 20852014\n", ""), "old <size>", id="missing-old"),
        pytest.param(SPEC_REQUEST.replace("old 20852014", "old 2e7"), "decimal", id="exponent"),
        pytest.param(SPEC_REQUEST.replace("old 20852014", f"old {2**64}"), "exceeds", id="big"),
        pytest.param(SPEC_REQUEST.replace(SPEC_PROOF[1], "AAAA"), "32-byte", id="short-hash"),
        pytest.param(
            SPEC_REQUEST.replace(SPEC_PROOF[1], SPEC_PROOF[1][:-1]), "base64", id="bad-b64"
        ),
        pytest.param(SPEC_REQUEST.replace("\n\n", "\n", 1), "base64|empty line", id="no-blank"),
        pytest.param(SPEC_REQUEST[:-1], "submitted checkpoint", id="truncated-note"),
        pytest.param(
            SPEC_REQUEST.replace("\n20852163\n", "\n020852163\n"), "leading zero", id="bad-cp"
        ),
        pytest.param(SPEC_REQUEST.replace("\n", "\r\n"), "U\\+000D", id="crlf"),
        pytest.param("", "old <size>|empty line", id="empty"),
    ],
)
def test_malformed_requests(body: str, message: str) -> None:
    with pytest.raises(WitnessRequestError, match=message):
        parse_add_checkpoint(body.encode("utf-8"))


def test_non_utf8_request() -> None:
    with pytest.raises(WitnessRequestError, match="UTF-8"):
        parse_add_checkpoint(b"old 1\n\n\xff")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("", "no cosignature", id="empty"),
        pytest.param(SPEC_RESPONSE[:-1], "newline", id="no-newline"),
        pytest.param(SPEC_RESPONSE + "\n", "em dash", id="trailing-blank"),
        pytest.param(SPEC_RESPONSE.replace("—", "-"), "em dash", id="hyphen"),
        pytest.param(SPEC_RESPONSE.replace("w1 C", "w1  C"), "base64", id="double-space"),
        pytest.param(b"\xe2\x80", "UTF-8", id="bad-utf8"),
    ],
)
def test_malformed_responses(body: str | bytes, message: str) -> None:
    with pytest.raises(WitnessResponseError, match=message):
        parse_add_checkpoint_response(body)


def test_format_response_needs_a_signature() -> None:
    with pytest.raises(NoteError, match="at least one"):
        format_add_checkpoint_response([])


def test_size_conflict_body() -> None:
    assert SIZE_CONTENT_TYPE == "text/x.tlog.size"
    assert format_size_conflict(20852014) == "20852014\n"
    assert format_size_conflict(0) == "0\n"
    assert parse_size_conflict(b"20852014\n") == 20852014
    for bad in (b"20852014", b"020\n", b"\n", b"-1\n", b"1 \n", b"1\n\n"):
        with pytest.raises(WitnessResponseError):
            parse_size_conflict(bad)
    with pytest.raises(NoteError):
        format_size_conflict(-1)


def test_origin_hash() -> None:
    origin = "example.com/behind-the-sofa"
    assert origin_hash(origin) == hashlib.sha256(origin.encode()).hexdigest()
    assert origin_hash(origin) == origin_hash(origin).lower()


# --- properties ---------------------------------------------------------------------------


@given(st.binary(max_size=400))
def test_parse_request_random_bytes(data: bytes) -> None:
    with contextlib.suppress(WitnessRequestError):
        parse_add_checkpoint(data)


@given(
    st.lists(st.sampled_from(["old ", "0", "9", "\n", SPEC_PROOF[0], "AA==", " "]), max_size=20),
    st.sampled_from(["", SPEC_CHECKPOINT, "a\n\n— b AAAAAAA=\n"]),
)
def test_parse_request_structured(head: list[str], tail: str) -> None:
    body = "".join(head) + tail
    try:
        req = parse_add_checkpoint(body.encode())
    except WitnessRequestError:
        return
    assert format_add_checkpoint(req) == body


@given(st.binary(max_size=300))
def test_parse_response_random_bytes(data: bytes) -> None:
    with contextlib.suppress(WitnessResponseError):
        parse_add_checkpoint_response(data)


@given(st.text(max_size=40))
def test_parse_size_conflict_random(data: str) -> None:
    with contextlib.suppress(WitnessResponseError):
        parse_size_conflict(data)


@given(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_CONSISTENCY_PROOF_LINES),
)
def test_request_round_trip(old: int, proof: list[bytes]) -> None:
    req = AddCheckpointRequest(old, proof, SPEC_CHECKPOINT)
    assert parse_add_checkpoint(format_add_checkpoint(req).encode()) == req
