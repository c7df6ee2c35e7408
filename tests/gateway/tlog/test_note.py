"""Tests for gateway.tlog.note: C2SP signed notes, key IDs, vkeys, Ed25519 signatures."""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import SekishoError
from gateway.http.errors import format_status
from gateway.tlog.errors import FormatError
from gateway.tlog.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    SIG_ECDSA,
    SIG_ED25519_COSIGNATURE,
    Note,
    NoteError,
    NoteVerificationError,
    Signature,
    cosignature_key_id,
    ecdsa_key_id,
    ed25519_key_id,
    format_note,
    format_signature_line,
    is_valid_key_name,
    log_key_type,
    note_signing_message,
    parse_log_verifier_key,
    parse_note,
    parse_signature_line,
    parse_verifier_key,
    sign_note_text,
    signature_for,
    verifier_key,
    verify_note,
)

# --- vectors from golang.org/x/mod/sumdb/note note_test.go -----------------------------
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY_MATERIAL = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"  # 0x01 || seed
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
    "ox33WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# --- vector from c2sp.org/signed-note, "Verifier keys / Example" ---------------------------
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXpp"
    "zi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# A real Ed25519 cosigner vkey (type 0x04) from transparency-dev/formats' tests.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def peter_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(PETER_SKEY_MATERIAL)[1:])


def test_error_types() -> None:
    assert issubclass(NoteError, FormatError)
    assert not issubclass(NoteError, SekishoError)  # formats carry no HTTP status
    assert NoteError("x").code == "invalid_note"
    assert format_status(NoteError("x")) == 400
    assert issubclass(NoteVerificationError, NoteError)


# --- key IDs and verifier keys -------------------------------------------------------------


def test_go_vkey_and_key_id_from_private_key() -> None:
    pub = raw_public(peter_key())
    assert ed25519_key_id("PeterNeumann", pub) == bytes.fromhex("c74f20a3")
    assert verifier_key("PeterNeumann", pub) == PETER_VKEY
    assert parse_verifier_key(PETER_VKEY) == ("PeterNeumann", bytes.fromhex("c74f20a3"), pub)


@pytest.mark.parametrize("vkey", [PETER_VKEY, ENOCH_VKEY, C2SP_VKEY])
def test_vkey_round_trip(vkey: str) -> None:
    name, key_id, pub = parse_verifier_key(vkey)
    assert ed25519_key_id(name, pub) == key_id
    assert verifier_key(name, pub) == vkey


def test_cosigner_vkey_type_04() -> None:
    name, key_id, pub = parse_verifier_key(REMORA_VKEY, sig_type=SIG_ED25519_COSIGNATURE)
    assert key_id == bytes.fromhex("da77ade7")
    assert cosignature_key_id(name, pub) == key_id
    assert ed25519_key_id(name, pub) != key_id
    assert verifier_key(name, pub, sig_type=SIG_ED25519_COSIGNATURE) == REMORA_VKEY
    with pytest.raises(NoteError, match="type 0x04, expected 0x01"):
        parse_verifier_key(REMORA_VKEY)
    with pytest.raises(NoteError, match="expected 0x04"):
        parse_verifier_key(PETER_VKEY, sig_type=SIG_ED25519_COSIGNATURE)


def test_vkey_manglings_rejected() -> None:
    """Every proper substring and every single-character bump is rejected (as Go's test)."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    parse_verifier_key(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        bumped = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            parse_verifier_key(bumped)


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        (
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "33 bytes|canonical",
        ),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "type 0x65"),
        ("PeterNeumann+C74F20A4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hexadecimal"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
        ("PeterNeumann+c74f20a3", "three parts"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX", "does not match"),
    ],
)
def test_vkey_bad(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_verifier_key(vkey)


def test_vkey_hex_case_insensitive() -> None:
    upper = PETER_VKEY.replace("c74f20a3", "C74F20A3")
    assert parse_verifier_key(upper)[1] == bytes.fromhex("c74f20a3")


def test_key_id_rejects_bad_inputs() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        ed25519_key_id("a", b"\x00" * 31)
    with pytest.raises(NoteError, match="key name"):
        ed25519_key_id("a+b", b"\x00" * 32)
    with pytest.raises(NoteError, match="signature type"):
        verifier_key("a", b"\x00" * 32, sig_type=3)  # 0x03 is reserved


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("example.com/log", True),
        ("oid/1.3.6.1.4.1.44363.47.1", True),
        ("ログ", True),
        ("", False),
        ("a b", False),
        ("a+b", False),
        ("a\u3000b", False),
        ("a\u00a0b", False),
        ("a\u2028b", False),
        ("a\tb", False),
        ("a\x01b", False),
        ("a\ud800", False),
    ],
)
def test_key_names(name: str, ok: bool) -> None:
    assert is_valid_key_name(name) is ok


# --- parsing and verifying real notes -------------------------------------------------------


def test_go_note_signed_byte_for_byte() -> None:
    key = peter_key()
    key_id = ed25519_key_id("PeterNeumann", raw_public(key))
    sig = sign_note_text(GO_TEXT, "PeterNeumann", key_id, key.sign)
    assert format_note(Note(GO_TEXT, [sig])) == GO_NOTE


def test_go_note_parses_and_verifies() -> None:
    name, _, pub = parse_verifier_key(PETER_VKEY)
    note = parse_note(GO_NOTE.encode("utf-8"))
    assert note.text == GO_TEXT
    assert len(note.signatures) == 1
    sig = verify_note(note, name, pub)
    assert sig.key_id == bytes.fromhex("c74f20a3")
    assert len(sig.signature) == 64
    assert format_note(note) == GO_NOTE


def test_two_signers_and_unknown_lines_ignored() -> None:
    data = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    note = parse_note(data)
    for vkey in (PETER_VKEY, ENOCH_VKEY):
        name, _, pub = parse_verifier_key(vkey)
        assert verify_note(note, name, pub).name == name
    # A corrupted signature from a key we do not check is ignored.
    bad_enoch = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    name, _, pub = parse_verifier_key(PETER_VKEY)
    verify_note(parse_note(GO_TEXT + "\n" + PETER_SIG + bad_enoch), name, pub)


def test_c2sp_spec_example_verifies() -> None:
    name, _, pub = parse_verifier_key(C2SP_VKEY)
    note = parse_note(C2SP_NOTE)
    assert note.text == "This is an example message.\n"
    verify_note(note, name, pub)


def test_corrupted_signature_fails() -> None:
    name, _, pub = parse_verifier_key(PETER_VKEY)
    note = parse_note(GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:])
    with pytest.raises(NoteVerificationError, match="does not verify"):
        verify_note(note, name, pub)


def test_any_failing_line_of_the_key_rejects() -> None:
    name, _, pub = parse_verifier_key(PETER_VKEY)
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteVerificationError):
        verify_note(parse_note(GO_TEXT + "\n" + PETER_SIG + bad), name, pub)


def test_altered_text_fails() -> None:
    name, _, pub = parse_verifier_key(PETER_VKEY)
    note = parse_note(GO_NOTE.replace("answer", "Answer"))
    with pytest.raises(NoteVerificationError):
        verify_note(note, name, pub)


def test_missing_key_fails() -> None:
    name, _, pub = parse_verifier_key(ENOCH_VKEY)
    with pytest.raises(NoteVerificationError, match=r"no signature from key EnochRoot\+af0cfe78"):
        verify_note(parse_note(GO_NOTE), name, pub)


def test_same_name_other_key_id_is_ignored() -> None:
    other = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    pub = raw_public(other)
    # A line under the same name but another key ID does not count.
    with pytest.raises(NoteVerificationError, match="no signature"):
        verify_note(parse_note(GO_NOTE), "PeterNeumann", pub)


def test_async_style_signing() -> None:
    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    pub = raw_public(key)
    key_id = ed25519_key_id("sekisho.example/log", pub)
    msg = note_signing_message("hello\n")
    assert msg == b"hello\n"
    sig = signature_for("sekisho.example/log", key_id, key.sign(msg))
    note = parse_note(format_note(Note("hello\n", [sig])))
    assert verify_note(note, "sekisho.example/log", pub) == sig


def test_signature_for_checks_length() -> None:
    with pytest.raises(NoteError, match="64 bytes"):
        signature_for("a", b"\x00" * 4, b"\x00" * 63)
    with pytest.raises(NoteError, match="key ID"):
        signature_for("a", b"\x00" * 3, b"\x00" * 64)
    with pytest.raises(NoteError, match="64 bytes"):
        sign_note_text("x\n", "a", b"\x00" * 4, lambda _msg: b"short")


def test_sign_rejects_bad_text() -> None:
    with pytest.raises(NoteError, match="end with a newline"):
        note_signing_message("abc")
    with pytest.raises(NoteError, match="U\\+000D"):
        note_signing_message("abc\r\n")


# --- malformed notes --------------------------------------------------------------------------

BAD_NOTES = [
    pytest.param(GO_TEXT, "no empty line", id="no-signatures"),
    pytest.param(GO_TEXT + "\n", "no signature lines", id="blank-only"),
    pytest.param(GO_TEXT + "\n" + PETER_SIG[:-1], "end with a newline", id="no-final-newline"),
    pytest.param("\x01" + GO_NOTE, "U\\+0001", id="control-char"),
    pytest.param(b"\xff" + GO_NOTE.encode(), "UTF-8", id="not-utf8"),
    pytest.param(b"\xed\xa0\x80" + GO_NOTE.encode(), "UTF-8", id="utf8-surrogate"),
    pytest.param("\ud800" + GO_NOTE, "UTF-8", id="lone-surrogate"),
    pytest.param(
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"), "base64", id="space-name"
    ),
    pytest.param(
        GO_TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"), "key name", id="plus"
    ),
    pytest.param(GO_NOTE + "Unexpected line.\n", "em dash", id="trailing-line"),
    pytest.param(GO_NOTE.replace("—", "-"), "em dash", id="hyphen"),
    pytest.param(GO_NOTE.replace("— ", "—"), "em dash", id="no-space"),
    pytest.param(GO_NOTE.replace("AM=\n", "AN=\n"), "canonical", id="noncanonical-b64"),
    pytest.param(GO_NOTE.replace("AM=\n", "AM\n"), "base64", id="unpadded-b64"),
    pytest.param(GO_TEXT + "\n— PeterNeumann x08gow==\n", "too short", id="key-id-only"),
    pytest.param(GO_TEXT + "\n— PeterNeumann \n", "key name", id="empty-b64"),
    pytest.param(GO_TEXT + "\n— PeterNeumann\n", "key name", id="no-b64"),
    pytest.param(GO_NOTE.replace("\n", "\r\n"), "U\\+000D", id="crlf"),
    pytest.param(GO_TEXT + "\n" + PETER_SIG + "\n", "no signature lines", id="trailing-blank"),
]


@pytest.mark.parametrize(("data", "message"), BAD_NOTES)
def test_malformed_notes(data: str | bytes, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_note(data)


def test_signature_count_limit() -> None:
    assert len(parse_note(GO_TEXT + "\n" + PETER_SIG * MAX_SIGNATURES).signatures) == 100
    with pytest.raises(NoteError, match="at most 100"):
        parse_note(GO_TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1))


def test_size_limit() -> None:
    tail = "\n\n" + PETER_SIG
    filler = "x" * (MAX_NOTE_SIZE - len(tail.encode("utf-8")))
    assert len(parse_note(filler + tail).text) == len(filler) + 1
    with pytest.raises(NoteError, match="limit"):
        parse_note("y" + filler + tail)
    with pytest.raises(NoteError, match="limit"):
        parse_note(b"z" * (MAX_NOTE_SIZE + 1))


def test_text_may_hold_blank_lines_and_del() -> None:
    text = "a\n\nb\x7f\n\n"
    key = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
    key_id = ed25519_key_id("k", raw_public(key))
    note = parse_note(format_note(Note(text, [sign_note_text(text, "k", key_id, key.sign)])))
    assert note.text == text
    verify_note(note, "k", raw_public(key))


def test_format_note_rejects() -> None:
    sig = parse_signature_line(PETER_SIG)
    with pytest.raises(NoteError, match="newline"):
        format_note(Note("abc", [sig]))
    with pytest.raises(NoteError, match="at least one"):
        format_note(Note("abc\n", []))
    with pytest.raises(NoteError, match="at most"):
        format_note(Note("abc\n", [sig] * 101))


def test_signature_dataclass_validates() -> None:
    with pytest.raises(NoteError):
        Signature("bad name", b"\x00" * 4, b"\x01")
    with pytest.raises(NoteError):
        Signature("ok", b"\x00" * 5, b"\x01")
    with pytest.raises(NoteError):
        Signature("ok", b"\x00" * 4, b"")


def test_signature_line_round_trip() -> None:
    sig = parse_signature_line(PETER_SIG)
    assert format_signature_line(sig) == PETER_SIG
    assert parse_signature_line(PETER_SIG.rstrip("\n")) == sig


# --- properties ---------------------------------------------------------------------------

_NOTE_ALPHABET = st.sampled_from([*list("ab \n—+=/AM\x01\r\x7fé\u3000"), "x08g", "— a "])
_NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1
).filter(is_valid_key_name)


@given(st.binary(max_size=300))
def test_parse_note_random_bytes(data: bytes) -> None:
    try:
        note = parse_note(data)
    except NoteError:
        return
    assert format_note(note) == data.decode("utf-8")


@given(st.lists(_NOTE_ALPHABET, max_size=60).map("".join))
def test_parse_note_random_text(data: str) -> None:
    try:
        note = parse_note(data)
    except NoteError:
        return
    assert format_note(note) == data


@given(st.text(max_size=200))
def test_parse_note_arbitrary_unicode(data: str) -> None:
    with contextlib.suppress(NoteError):
        parse_note(data)


@given(st.text(max_size=120))
def test_parse_vkey_random(data: str) -> None:
    with contextlib.suppress(NoteError):
        parse_verifier_key(data)


@given(st.text(max_size=120))
def test_parse_signature_line_random(data: str) -> None:
    with contextlib.suppress(NoteError):
        parse_signature_line(data)


@given(
    text=st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\r\t\x00"),
        max_size=80,
    ).map(lambda t: "".join(c for c in t if c == "\n" or ord(c) >= 0x20) + "\n"),
    sigs=st.lists(
        st.tuples(_NAMES, st.binary(min_size=4, max_size=4), st.binary(min_size=1, max_size=80)),
        min_size=1,
        max_size=5,
    ),
)
def test_format_parse_round_trip(text: str, sigs: list[tuple[str, bytes, bytes]]) -> None:
    note = Note(text, [Signature(n, k, s) for n, k, s in sigs])
    assert parse_note(format_note(note)) == note


# --- type 0x02: ECDSA log keys (transparency-dev/witness, C2SP signed-note) ---------------


def _ecdsa_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    private = ec.generate_private_key(ec.SECP256R1())
    spki = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return private, spki


def test_ecdsa_vkey_key_id_is_the_spki_hash_and_round_trips() -> None:
    _, spki = _ecdsa_key()
    vkey = verifier_key("log.example/a", spki, sig_type=SIG_ECDSA)
    name, hex_id, material = vkey.split("+", 2)
    assert name == "log.example/a"
    assert hex_id == hashlib.sha256(spki).digest()[:4].hex()  # no name, no type byte
    assert base64.b64decode(material) == b"\x02" + spki
    assert parse_log_verifier_key(vkey) == (name, bytes.fromhex(hex_id), spki)
    assert log_key_type(spki) == SIG_ECDSA
    with pytest.raises(NoteError, match="does not match"):
        parse_log_verifier_key(f"{name}+00000000+{material}")


def test_ecdsa_note_verifies_and_rejects_changes() -> None:
    private, spki = _ecdsa_key()
    text = "log.example/a\n5\n" + base64.b64encode(bytes(32)).decode() + "\n"
    der = private.sign(text.encode(), ec.ECDSA(SHA256()))
    sig = signature_for("log.example/a", ecdsa_key_id(spki), der, sig_type=SIG_ECDSA)
    signed = format_note(Note(text, [sig]))
    assert verify_note(parse_note(signed), "log.example/a", spki) == sig
    altered = signed.replace("\n5\n", "\n6\n")
    with pytest.raises(NoteVerificationError, match="does not verify"):
        verify_note(parse_note(altered), "log.example/a", spki)
    _, stranger = _ecdsa_key()
    with pytest.raises(NoteVerificationError, match="no signature from key"):
        verify_note(parse_note(signed), "log.example/a", stranger)


def test_log_vkeys_of_other_types_and_curves_are_refused() -> None:
    ed = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ed_vkey = verifier_key("log.example/a", ed)
    assert parse_log_verifier_key(ed_vkey)[2] == ed
    cosigner = verifier_key("w.example", ed, sig_type=SIG_ED25519_COSIGNATURE)
    with pytest.raises(NoteError, match="type 0x04, expected 0x01"):
        parse_log_verifier_key(cosigner)
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    spki = k1.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(NoteError, match="P-256, P-384 or P-521"):
        verifier_key("log.example/a", spki, sig_type=SIG_ECDSA)
    with pytest.raises(NoteError, match="not a DER SubjectPublicKeyInfo"):
        verifier_key("log.example/a", b"\x30" + bytes(40), sig_type=SIG_ECDSA)
