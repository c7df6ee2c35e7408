"""Tests for gateway.tlog.checkpoint: tlog-checkpoint text and tlog-cosignature/v1."""

from __future__ import annotations

import base64
import contextlib
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from gateway.tlog.checkpoint import (
    MAX_TIMESTAMP,
    Checkpoint,
    CheckpointError,
    cosignature_message,
    cosignature_timestamp,
    format_cosignature,
    open_signed_checkpoint,
    parse_checkpoint,
    sign_cosignature,
    verify_cosignature,
)
from gateway.tlog.note import (
    SIG_ED25519_COSIGNATURE,
    Note,
    NoteError,
    NoteVerificationError,
    cosignature_key_id,
    ed25519_key_id,
    format_note,
    parse_note,
    parse_verifier_key,
    sign_note_text,
    verify_note,
)

# c2sp.org/tlog-checkpoint example body.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

# A real signed checkpoint of a staging CT log (Ed25519 key ba2f06c0 plus an
# RFC 6962 STH signature under the same name), cosigned by witnesses, among
# them remora.n621.de (Ed25519 cosignature key da77ade7).
REAL_LOG_VKEY = (
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
)
REAL_WITNESS_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
REAL_TEXT = (
    "arche2025h1.staging.ct.transparency.dev\n1432088532\n"
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
)
REAL_NOTE = REAL_TEXT + (
    "\n"
    "— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREP"
    "MHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3"
    "NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    "— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rh"
    "IgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    "— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcx"
    "Z75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"
    "— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sX"
    "Tynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
    "— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmI"
    "Y/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n"
)
REAL_COSIGNATURE_TIME = 0x6A122120


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


LOG_KEY = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
LOG_NAME = "sekisho.example/ledger"
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
WITNESS_NAME = "witness.example/w1"


def signed(cp: Checkpoint) -> Note:
    text = cp.to_text()
    key_id = ed25519_key_id(LOG_NAME, raw_public(LOG_KEY))
    return Note(text, [sign_note_text(text, LOG_NAME, key_id, LOG_KEY.sign)])


def test_error_type() -> None:
    assert issubclass(CheckpointError, NoteError)
    assert CheckpointError("x").code == "invalid_checkpoint"


# --- text format -----------------------------------------------------------------------------


def test_spec_example_round_trip() -> None:
    cp = parse_checkpoint(SPEC_TEXT)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.to_text() == SPEC_TEXT


def test_extensions_and_empty_tree() -> None:
    cp = Checkpoint("o with spaces+plus", 0, b"\x00" * 32, ("ext one", "ext—two"))
    text = cp.to_text()
    zero_root = "A" * 43 + "="
    assert text == f"o with spaces+plus\n0\n{zero_root}\next one\next—two\n"
    assert parse_checkpoint(text) == cp


def test_max_size() -> None:
    text = f"o\n{2**64 - 1}\n{'A' * 43}=\n"
    assert parse_checkpoint(text).size == 2**64 - 1
    with pytest.raises(CheckpointError, match="exceeds"):
        parse_checkpoint(f"o\n{2**64}\n{'A' * 43}=\n")


_ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(f"o\n020\n{_ROOT}\n", "leading zero", id="leading-zero"),
        pytest.param(f"o\n00\n{_ROOT}\n", "leading zero", id="double-zero"),
        pytest.param(f"o\n+5\n{_ROOT}\n", "decimal", id="plus-sign"),
        pytest.param(f"o\n-5\n{_ROOT}\n", "decimal", id="minus-sign"),
        pytest.param(f"o\n 5\n{_ROOT}\n", "decimal", id="space"),
        pytest.param(f"o\n1_000\n{_ROOT}\n", "decimal", id="underscore"),
        pytest.param(f"o\n\u0663\n{_ROOT}\n", "decimal", id="arabic-digit"),
        pytest.param(f"o\n{'9' * 5000}\n{_ROOT}\n", "exceeds", id="huge"),
        pytest.param("o\n5\nAAAA\n", "32-byte", id="short-root"),
        pytest.param(f"o\n5\n{_ROOT[:-2]}J=\n", "canonical", id="noncanonical-root"),
        pytest.param(f"o\n5\n{_ROOT[:-1]}\n", "base64", id="unpadded-root"),
        pytest.param(f"o\n5\n{_ROOT}", "newline", id="no-final-newline"),
        pytest.param("o\n5\n", "three lines", id="two-lines"),
        pytest.param(f"\n5\n{_ROOT}\n", "line 1 is empty", id="empty-origin"),
        pytest.param(f"o\n5\n{_ROOT}\n\n", "line 4 is empty", id="empty-extension"),
        pytest.param(f"o\n5\n{_ROOT}\nx\n\ny\n", "line 5 is empty", id="blank-between"),
        pytest.param(f"o\r\n5\n{_ROOT}\n", "U\\+000D", id="cr"),
        pytest.param(f"o\x00\n5\n{_ROOT}\n", "U\\+0000", id="nul"),
        pytest.param(f"\ud800\n5\n{_ROOT}\n", "UTF-8", id="surrogate"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"origin": "a\tb"},
        {"size": -1},
        {"size": 2**64},
        {"root_hash": b"\x00" * 31},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
    ],
)
def test_constructor_validates(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"origin": "o", "size": 1, "root_hash": b"\x00" * 32}
    base.update(kwargs)
    with pytest.raises(CheckpointError):
        Checkpoint(**base)  # type: ignore[arg-type]


# --- signed checkpoints -------------------------------------------------------------------------


def test_real_checkpoint_verifies() -> None:
    name, _, pub = parse_verifier_key(REAL_LOG_VKEY)
    cp, note = open_signed_checkpoint(REAL_NOTE.encode("utf-8"), name, name, pub)
    assert cp.size == 1432088532
    assert cp.to_text() == REAL_TEXT
    assert len(note.signatures) == 6
    assert format_note(note) == REAL_NOTE


def test_real_cosignature_verifies() -> None:
    name, key_id, pub = parse_verifier_key(REAL_WITNESS_VKEY, sig_type=SIG_ED25519_COSIGNATURE)
    note = parse_note(REAL_NOTE)
    assert verify_cosignature(note, REAL_TEXT, name, pub) == REAL_COSIGNATURE_TIME
    (sig,) = [s for s in note.signatures if s.key_id == key_id]
    assert cosignature_timestamp(sig) == REAL_COSIGNATURE_TIME
    with pytest.raises(NoteVerificationError, match="later than"):
        verify_cosignature(note, REAL_TEXT, name, pub, not_after=REAL_COSIGNATURE_TIME - 1)


def test_real_checkpoint_clobbered() -> None:
    altered = REAL_NOTE.replace("1432088532", "42")
    log_name, _, log_pub = parse_verifier_key(REAL_LOG_VKEY)
    with pytest.raises(NoteVerificationError):
        open_signed_checkpoint(altered, log_name, log_name, log_pub)
    w_name, _, w_pub = parse_verifier_key(REAL_WITNESS_VKEY, sig_type=SIG_ED25519_COSIGNATURE)
    altered_text = REAL_TEXT.replace("1432088532", "42")
    with pytest.raises(NoteVerificationError):
        verify_cosignature(parse_note(altered), altered_text, w_name, w_pub)


def test_cosignature_key_is_not_a_note_key() -> None:
    """The witness key signs with type 0x04: as a plain 0x01 key it has no signature."""
    name, _, pub = parse_verifier_key(REAL_WITNESS_VKEY, sig_type=SIG_ED25519_COSIGNATURE)
    with pytest.raises(NoteVerificationError, match="no signature"):
        verify_note(parse_note(REAL_NOTE), name, pub)


def test_open_signed_checkpoint_round_trip() -> None:
    cp = Checkpoint(LOG_NAME, 7, bytes(range(32)))
    data = format_note(signed(cp))
    got, note = open_signed_checkpoint(data, LOG_NAME, LOG_NAME, raw_public(LOG_KEY))
    assert got == cp
    assert note.text == cp.to_text()


def test_open_signed_checkpoint_wrong_origin() -> None:
    data = format_note(signed(Checkpoint("other.example/log", 7, bytes(32))))
    with pytest.raises(CheckpointError, match="not the expected"):
        open_signed_checkpoint(data, LOG_NAME, LOG_NAME, raw_public(LOG_KEY))


def test_open_signed_checkpoint_wrong_key() -> None:
    data = format_note(signed(Checkpoint(LOG_NAME, 7, bytes(32))))
    with pytest.raises(NoteVerificationError):
        open_signed_checkpoint(data, LOG_NAME, LOG_NAME, raw_public(WITNESS_KEY))


def test_signed_garbage_body_is_rejected_after_verification() -> None:
    text = "not a checkpoint\n"
    key_id = ed25519_key_id(LOG_NAME, raw_public(LOG_KEY))
    data = format_note(Note(text, [sign_note_text(text, LOG_NAME, key_id, LOG_KEY.sign)]))
    with pytest.raises(CheckpointError, match="three lines"):
        open_signed_checkpoint(data, LOG_NAME, LOG_NAME, raw_public(LOG_KEY))


# --- cosignatures ----------------------------------------------------------------------------


def test_cosignature_message_matches_spec() -> None:
    assert cosignature_message(SPEC_TEXT, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_cosignature_message_includes_extensions() -> None:
    text = Checkpoint("o", 1, bytes(32), ("ext",)).to_text()
    assert cosignature_message(text, 0).endswith(b"=\next\n")


def test_cosignature_message_rejects() -> None:
    with pytest.raises(CheckpointError, match="2\\^63-1"):
        cosignature_message(SPEC_TEXT, MAX_TIMESTAMP + 1)
    with pytest.raises(CheckpointError, match="2\\^63-1"):
        cosignature_message(SPEC_TEXT, -1)
    with pytest.raises(CheckpointError):
        cosignature_message("not\na checkpoint\n", 1)


def _cosign(text: str, timestamp: int) -> tuple[Note, bytes]:
    pub = raw_public(WITNESS_KEY)
    key_id = cosignature_key_id(WITNESS_NAME, pub)
    sig = sign_cosignature(text, WITNESS_NAME, key_id, timestamp, WITNESS_KEY.sign)
    note = signed(parse_checkpoint(text))
    note.signatures.append(sig)
    return parse_note(format_note(note)), pub


def test_cosign_and_verify() -> None:
    text = Checkpoint(LOG_NAME, 9, bytes(range(32))).to_text()
    note, pub = _cosign(text, 1_700_000_000)
    assert verify_cosignature(note, text, WITNESS_NAME, pub) == 1_700_000_000
    # Only the signature lines (a witness response) work too.
    assert verify_cosignature(note.signatures, text, WITNESS_NAME, pub) == 1_700_000_000
    # The log signature still verifies next to the cosignature.
    verify_note(note, LOG_NAME, raw_public(LOG_KEY))
    sig = note.signatures[-1]
    assert len(sig.signature) == 72
    assert sig.signature[:8] == (1_700_000_000).to_bytes(8, "big")


def test_async_style_cosigning() -> None:
    text = SPEC_TEXT
    pub = raw_public(WITNESS_KEY)
    key_id = cosignature_key_id(WITNESS_NAME, pub)
    msg = cosignature_message(text, 5)
    sig = format_cosignature(WITNESS_NAME, key_id, 5, WITNESS_KEY.sign(msg))
    assert verify_cosignature([sig], text, WITNESS_NAME, pub) == 5


def test_cosignature_tampered_timestamp() -> None:
    text = SPEC_TEXT
    note, pub = _cosign(text, 100)
    sig = note.signatures[-1]
    forged = dataclasses.replace(sig, signature=(101).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(NoteVerificationError, match="does not verify"):
        verify_cosignature([forged], text, WITNESS_NAME, pub)


def test_cosignature_wrong_checkpoint() -> None:
    note, pub = _cosign(SPEC_TEXT, 100)
    other = Checkpoint("example.com/behind-the-sofa", 20852164, bytes(32)).to_text()
    with pytest.raises(NoteVerificationError, match="does not verify"):
        verify_cosignature(note.signatures, other, WITNESS_NAME, pub)
    with pytest.raises(NoteVerificationError, match="not the given checkpoint"):
        verify_cosignature(note, other, WITNESS_NAME, pub)


def test_cosignature_missing_or_malformed() -> None:
    note, pub = _cosign(SPEC_TEXT, 100)
    other_pub = raw_public(LOG_KEY)
    with pytest.raises(NoteVerificationError, match="no cosignature"):
        verify_cosignature(note, SPEC_TEXT, WITNESS_NAME, other_pub)
    sig = note.signatures[-1]
    short = dataclasses.replace(sig, signature=sig.signature[:71])
    with pytest.raises(NoteVerificationError, match="72 bytes"):
        verify_cosignature([short], SPEC_TEXT, WITNESS_NAME, pub)
    high = dataclasses.replace(sig, signature=b"\x80" + sig.signature[1:])
    with pytest.raises(NoteVerificationError, match="2\\^63-1"):
        verify_cosignature([high], SPEC_TEXT, WITNESS_NAME, pub)


def test_format_cosignature_rejects() -> None:
    with pytest.raises(CheckpointError, match="64 bytes"):
        format_cosignature(WITNESS_NAME, b"\x00" * 4, 1, b"\x00" * 65)
    with pytest.raises(CheckpointError, match="2\\^63-1"):
        format_cosignature(WITNESS_NAME, b"\x00" * 4, 2**63, b"\x00" * 64)


# --- properties ---------------------------------------------------------------------------

_LINE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


@given(
    origin=_LINE,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3),
)
def test_round_trip_property(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(cp.to_text()) == cp


@given(st.text(max_size=200))
def test_parse_random_text(text: str) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(text)


_PIECES = ["o", "\n", "0", "1", "9", "A", "=", "AAAA", " ", "\r"]


@given(st.lists(st.sampled_from(_PIECES)).map("".join))
def test_parse_random_structured(text: str) -> None:
    try:
        cp = parse_checkpoint(text)
    except CheckpointError:
        return
    assert cp.to_text() == text


@given(st.binary(max_size=300))
def test_open_random_bytes(data: bytes) -> None:
    with contextlib.suppress(NoteError):
        open_signed_checkpoint(data, LOG_NAME, LOG_NAME, raw_public(LOG_KEY))
