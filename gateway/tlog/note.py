"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures.

A signed note is UTF-8 text ending in a newline, a blank line, then one or
more signature lines::

    <text, ending in "\\n">
    <empty line>
    — <key name> base64(4-byte key ID || signature)

Key IDs are ``SHA-256(name || "\\n" || type || public key)[:4]``; type 0x01 is
a plain Ed25519 note signature, 0x04 a tlog-cosignature/v1 witness
cosignature. Verifier keys ("vkeys") are ``name+hex(key ID)+base64(type ||
public key)``.

Type 0x02 is ECDSA as github.com/transparency-dev/witness and the C2SP spec
define it, for log keys on tokens without EdDSA: the public key is the DER
SubjectPublicKeyInfo (P-256, P-384 or P-521), the key ID is
``SHA-256(SPKI DER)[:4]`` (no name, no type byte), the signature is the ASN.1
DER ECDSA signature over SHA-256 of the note text, and the vkey is
``name+hex(key ID)+base64(0x02 || SPKI DER)``. A log key is handled as bytes:
32 raw bytes are Ed25519 (type 0x01), anything else must be an ECDSA SPKI
(type 0x02); :func:`log_key_type` tells which.

Parsing is strict: the note must be valid UTF-8 with no ASCII control
characters but newline, no larger than ``MAX_NOTE_SIZE`` bytes, with at most
``MAX_SIGNATURES`` signature lines, and every base64 value must be in its one
canonical form (padded, zero trailing bits).

Signing happens on a hardware token, so nothing here holds a private key: the
``sign_*`` helpers take a callback returning the 64-byte Ed25519 signature,
and ``note_signing_message`` / ``signature_for`` split that in two for async
callers::

    msg = note_signing_message(text)
    sig = signature_for(name, key_id, await token.sign(msg))
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.serialization import load_der_public_key

from gateway.tlog.errors import FormatError

__all__ = [
    "ED25519_PUBLIC_KEY_SIZE",
    "ED25519_SIGNATURE_SIZE",
    "KEY_ID_SIZE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIGNATURE_PREFIX",
    "SIG_ECDSA",
    "SIG_ED25519",
    "SIG_ED25519_COSIGNATURE",
    "Note",
    "NoteError",
    "NoteVerificationError",
    "SignFunc",
    "Signature",
    "check_no_control_chars",
    "cosignature_key_id",
    "decode_base64",
    "decode_hash",
    "decode_utf8",
    "ecdsa_key_id",
    "ecdsa_verifies",
    "ed25519_key_id",
    "ed25519_verifies",
    "format_note",
    "format_signature_line",
    "is_valid_key_name",
    "load_ecdsa_public_key",
    "load_public_key",
    "log_key_id",
    "log_key_type",
    "matching_signatures",
    "note_signing_message",
    "parse_decimal",
    "parse_log_verifier_key",
    "parse_note",
    "parse_signature_line",
    "parse_verifier_key",
    "shorten",
    "sign_note_text",
    "signature_for",
    "verifier_key",
    "verify_note",
]

SIG_ED25519 = 0x01
"""Signature type byte of plain Ed25519 note signatures."""
SIG_ECDSA = 0x02
"""Signature type byte of ECDSA note signatures (transparency-dev/witness; SPKI DER key)."""
SIG_ED25519_COSIGNATURE = 0x04
"""Signature type byte of timestamped Ed25519 cosignatures (tlog-cosignature/v1)."""

KEY_ID_SIZE = 4
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64

MAX_NOTE_SIZE = 1 << 20
"""Largest signed note accepted, in bytes (1 MiB)."""
MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (as golang.org/x/mod/sumdb/note)."""
MAX_VKEY_SIZE = 4096

SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an em dash (U+2014) and a space."""

SignFunc = Callable[[bytes], bytes]
"""Returns the 64-byte Ed25519 signature of the given message."""

# Unicode White_Space (what Go's unicode.IsSpace and the spec's "Unicode spaces" mean).
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile("0|[1-9][0-9]*")
_DIGITS = re.compile("[0-9]+")
_HEX_KEY_ID = re.compile("[0-9a-fA-F]{8}")
_SIGNED_TYPES = (SIG_ED25519, SIG_ECDSA, SIG_ED25519_COSIGNATURE)
_ECDSA_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_MAX_SPKI_SIZE = 256


class NoteError(FormatError):
    """A signed note, key or signature is malformed, or a signature does not verify."""

    code = "invalid_note"


class NoteVerificationError(NoteError):
    """The note is well formed, but lacks a valid signature from the expected key."""

    code = "note_signature_invalid"


# --- shared strict decoders (used by the checkpoint, receipt and witness modules) ------


def decode_base64(text: str, what: str, error: type[NoteError] = NoteError) -> bytes:
    """Decode standard padded base64, accepting only its canonical form."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64 (RFC 4648 standard alphabet, padded)") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not in canonical base64 form (check padding and the last digit)")
    return raw


def decode_hash(text: str, what: str, error: type[NoteError] = NoteError) -> bytes:
    """Decode a base64 SHA-256 hash (exactly 32 bytes)."""
    raw = decode_base64(text, what, error)
    if len(raw) != 32:
        raise error(f"{what} must be a 32-byte SHA-256 hash, but decodes to {len(raw)} bytes")
    return raw


def decode_hash_lines(
    lines: Sequence[str], what: str, limit: int, error: type[NoteError] = NoteError
) -> list[bytes]:
    """Decode a proof: one base64 SHA-256 hash per line, at most ``limit`` lines."""
    if len(lines) > limit:
        raise error(f"the {what} has {len(lines)} lines; at most {limit} are allowed")
    return [
        decode_hash(line, f"{what} line {number}", error)
        for number, line in enumerate(lines, start=1)
    ]


def parse_decimal(
    text: str, what: str, error: type[NoteError] = NoteError, *, max_value: int = 2**64 - 1
) -> int:
    """Parse an ASCII decimal with no sign and no leading zeroes, at most ``max_value``."""
    if not _DECIMAL.fullmatch(text):
        if len(text) > 1 and text.startswith("0") and _DIGITS.fullmatch(text):
            raise error(f"{what} {shorten(text, 30)} has a leading zero")
        raise error(
            f"{what} must be a decimal number with no leading zeroes, not {shorten(text, 30)}"
        )
    if len(text) > len(str(max_value)):
        raise error(f"{what} exceeds the largest allowed value {max_value}")
    value = int(text)
    if value > max_value:
        raise error(f"{what} {value} exceeds the largest allowed value {max_value}")
    return value


def check_no_control_chars(text: str, what: str, error: type[NoteError] = NoteError) -> None:
    """Reject ASCII control characters other than newline."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise error(
            f"{what} contains the control character U+{ord(bad.group()):04X}; "
            "only newline (U+000A) is allowed"
        )


def decode_utf8(
    data: str | bytes, what: str, max_size: int, error: type[NoteError] = NoteError
) -> str:
    """Return ``data`` as text, checking it is UTF-8 and at most ``max_size`` bytes."""
    if isinstance(data, str):
        if len(data) > max_size:
            raise error(f"{what} is larger than the {max_size}-byte limit")
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise error(f"{what} contains characters that cannot be encoded as UTF-8") from None
    else:
        if len(data) > max_size:
            raise error(f"{what} is {len(data)} bytes, larger than the {max_size}-byte limit")
        raw = bytes(data)
    if len(raw) > max_size:
        raise error(f"{what} is {len(raw)} bytes, larger than the {max_size}-byte limit")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not valid UTF-8 (bad byte at offset {exc.start})") from None


def shorten(value: str, limit: int = 60) -> str:
    """Return ``repr(value)``, cut to about ``limit`` characters for error messages."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + "..."


def _encode_text(text: str, what: str, error: type[NoteError] = NoteError) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what} contains characters that cannot be encoded as UTF-8") from None


# --- names, key IDs and verifier keys ---------------------------------------------------


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` is a usable key name: non-empty, no spaces, no '+', no controls."""
    return (
        bool(name)
        and "+" not in name
        and not any(c in _UNICODE_SPACES for c in name)
        and _CONTROL.search(name) is None
        and all(not 0xD800 <= ord(c) <= 0xDFFF for c in name)
    )


def _check_name(name: str, error: type[NoteError] = NoteError) -> None:
    if not is_valid_key_name(name):
        raise error(
            f"key name {shorten(name)} is invalid: it must be non-empty and contain no spaces, "
            "no plus sign and no control characters"
        )


def _check_public_key(public_key: bytes) -> None:
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise NoteError(
            f"an Ed25519 public key is {ED25519_PUBLIC_KEY_SIZE} bytes, not {len(public_key)}"
        )


def _key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    _check_name(name)
    _check_public_key(public_key)
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key)
    return digest.digest()[:KEY_ID_SIZE]


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key ID of an Ed25519 note signer (type 0x01)."""
    return _key_id(name, SIG_ED25519, public_key)


def ecdsa_key_id(spki_der: bytes) -> bytes:
    """Return the 4-byte key ID of an ECDSA note signer (type 0x02): SHA-256 of the SPKI DER."""
    load_ecdsa_public_key(spki_der)
    return hashlib.sha256(spki_der).digest()[:KEY_ID_SIZE]


def log_key_type(public_key: bytes) -> int:
    """The note signature type of a log key: 0x01 for 32 raw Ed25519 bytes, else 0x02 (SPKI)."""
    return SIG_ED25519 if len(public_key) == ED25519_PUBLIC_KEY_SIZE else SIG_ECDSA


def log_key_id(name: str, public_key: bytes) -> bytes:
    """The key ID a log key signs checkpoints under (type 0x01 or 0x02)."""
    if log_key_type(public_key) == SIG_ECDSA:
        _check_name(name)
        return ecdsa_key_id(public_key)
    return ed25519_key_id(name, public_key)


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key ID of an Ed25519 tlog-cosignature/v1 cosigner (type 0x04)."""
    return _key_id(name, SIG_ED25519_COSIGNATURE, public_key)


def _check_sig_type(sig_type: int) -> None:
    if sig_type not in _SIGNED_TYPES:
        raise NoteError(
            f"signature type 0x{sig_type:02x} is not supported; "
            "use 0x01 (Ed25519), 0x02 (ECDSA) or 0x04 (Ed25519 cosignature)"
        )


def verifier_key(name: str, public_key: bytes, *, sig_type: int = SIG_ED25519) -> str:
    """Return the vkey ``name+hex(key ID)+base64(type || public key)``."""
    _check_sig_type(sig_type)
    if sig_type == SIG_ECDSA:
        _check_name(name)
        kid = ecdsa_key_id(public_key)
    else:
        kid = _key_id(name, sig_type, public_key)
    material = base64.b64encode(bytes([sig_type]) + public_key).decode("ascii")
    return f"{name}+{kid.hex()}+{material}"


def parse_verifier_key(vkey: str, *, sig_type: int = SIG_ED25519) -> tuple[str, bytes, bytes]:
    """Parse a vkey of the given type into ``(name, key_id, public_key)``.

    The key ID must match the one computed from the name and key.
    """
    _check_sig_type(sig_type)
    if len(vkey) > MAX_VKEY_SIZE:
        raise NoteError(f"the verifier key is longer than {MAX_VKEY_SIZE} characters")
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError(
            "a verifier key has three parts separated by '+': name, 8 hex digits of key ID, "
            "and base64 key material"
        )
    name, hex_id, material_b64 = parts
    _check_name(name)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError(
            f"the verifier key ID {shorten(hex_id, 20)} must be exactly 8 hexadecimal digits"
        )
    material = decode_base64(material_b64, "the verifier key material")
    if sig_type != SIG_ECDSA and len(material) != 1 + ED25519_PUBLIC_KEY_SIZE:
        raise NoteError(
            f"the verifier key material is {len(material)} bytes; an Ed25519 vkey holds "
            f"a type byte and a {ED25519_PUBLIC_KEY_SIZE}-byte public key"
        )
    if material[:1] != bytes([sig_type]):
        found = f"0x{material[0]:02x}" if material else "none"
        raise NoteError(f"the verifier key has signature type {found}, expected 0x{sig_type:02x}")
    public_key = material[1:]
    key_id = bytes.fromhex(hex_id)
    expected = (
        ecdsa_key_id(public_key) if sig_type == SIG_ECDSA else _key_id(name, sig_type, public_key)
    )
    if key_id != expected:
        raise NoteError(
            f"the verifier key ID {hex_id} does not match its name and key "
            f"(expected {expected.hex()}); the key is corrupt or mislabelled"
        )
    return name, key_id, public_key


def parse_log_verifier_key(vkey: str) -> tuple[str, bytes, bytes]:
    """Parse a log's vkey, Ed25519 (type 0x01) or ECDSA (type 0x02), into
    ``(name, key_id, public_key)``: 32 raw bytes for Ed25519, the SPKI DER for ECDSA.

    The type is read from the key material's first byte; anything but 0x02 is
    parsed (and its errors worded) as an Ed25519 vkey.
    """
    parts = vkey.split("+", 2)
    sig_type = SIG_ED25519
    if len(parts) == 3:
        with contextlib.suppress(binascii.Error, ValueError):
            if base64.b64decode(parts[2], validate=True)[:1] == bytes([SIG_ECDSA]):
                sig_type = SIG_ECDSA
    return parse_verifier_key(vkey, sig_type=sig_type)


# --- data model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, 4-byte key ID and the signature bytes after it."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.key_id) != KEY_ID_SIZE:
            raise NoteError(f"a key ID is {KEY_ID_SIZE} bytes, not {len(self.key_id)}")
        if not self.signature:
            raise NoteError(f"the signature from {shorten(self.name)} is empty")


@dataclass
class Note:
    """A note text (ending in a newline) and its signatures, in order."""

    text: str
    signatures: list[Signature] = field(default_factory=list)


# --- formatting and parsing -----------------------------------------------------------------


def _check_text(text: str, error: type[NoteError] = NoteError) -> bytes:
    raw = _encode_text(text, "the note text", error)
    if not text.endswith("\n"):
        raise error("the note text must end with a newline")
    check_no_control_chars(text, "the note text", error)
    return raw


def format_signature_line(sig: Signature) -> str:
    """Return ``— name base64(key_id || signature)`` plus a newline."""
    encoded = base64.b64encode(sig.key_id + sig.signature).decode("ascii")
    return f"{SIGNATURE_PREFIX}{sig.name} {encoded}\n"


def parse_signature_line(line: str, error: type[NoteError] = NoteError) -> Signature:
    """Parse one signature line, with or without its trailing newline."""
    if line.endswith("\n"):
        line = line[:-1]
    if not line.startswith(SIGNATURE_PREFIX):
        raise error(
            f"signature line {shorten(line, 40)} must start with an em dash (U+2014) and a space"
        )
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not encoded:
        raise error(f"signature line {shorten(line, 40)} must be '— <key name> <base64 signature>'")
    _check_name(name, error)
    raw = decode_base64(encoded, f"the signature from {shorten(name)}", error)
    if len(raw) <= KEY_ID_SIZE:
        raise error(
            f"the signature from {shorten(name)} is too short to hold a key ID and a signature"
        )
    return Signature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def format_note(note: Note) -> str:
    """Serialise a note: text, blank line, signature lines."""
    _check_text(note.text)
    if not note.signatures:
        raise NoteError("a signed note needs at least one signature")
    if len(note.signatures) > MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    out = note.text + "\n" + "".join(format_signature_line(s) for s in note.signatures)
    if len(out.encode("utf-8")) > MAX_NOTE_SIZE:
        raise NoteError(f"the signed note would exceed the {MAX_NOTE_SIZE}-byte limit")
    return out


def parse_note(data: str | bytes) -> Note:
    """Parse a signed note strictly; signatures are not verified here."""
    text = decode_utf8(data, "the signed note", MAX_NOTE_SIZE)
    check_no_control_chars(text, "the signed note")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("the signed note has no empty line separating the text from the signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block:
        raise NoteError("the signed note has no signature lines after its last empty line")
    if not sig_block.endswith("\n"):
        raise NoteError("the last signature line of the note must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(
            f"the note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are accepted"
        )
    return Note(body, [parse_signature_line(line) for line in lines])


# --- signing and verification ---------------------------------------------------------------


def note_signing_message(text: str) -> bytes:
    """Return the bytes an Ed25519 note signer signs: the note text itself."""
    return _check_text(text)


def signature_for(
    name: str, key_id: bytes, sig: bytes, *, sig_type: int = SIG_ED25519
) -> Signature:
    """Wrap a token's signature as a note signature: 64 bytes Ed25519, or DER ECDSA."""
    if sig_type == SIG_ECDSA:
        if not sig or sig[0] != 0x30 or len(sig) > 2 * 66 + 9:
            raise NoteError("the signer returned something that is not a DER ECDSA signature")
        return Signature(name, bytes(key_id), bytes(sig))
    if len(sig) != ED25519_SIGNATURE_SIZE:
        raise NoteError(
            f"the signer returned {len(sig)} bytes; an Ed25519 signature is "
            f"{ED25519_SIGNATURE_SIZE} bytes"
        )
    return Signature(name, bytes(key_id), bytes(sig))


def sign_note_text(text: str, name: str, key_id: bytes, sign: SignFunc) -> Signature:
    """Sign ``text`` with the callback ``sign`` and return the signature."""
    return signature_for(name, key_id, sign(note_signing_message(text)))


def load_public_key(public_key: bytes) -> Ed25519PublicKey:
    """Load a raw 32-byte Ed25519 public key."""
    _check_public_key(public_key)
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise NoteError("the Ed25519 public key is not a valid key encoding") from None


def load_ecdsa_public_key(spki_der: bytes) -> ec.EllipticCurvePublicKey:
    """Load a DER SubjectPublicKeyInfo holding a P-256, P-384 or P-521 key."""
    if len(spki_der) > _MAX_SPKI_SIZE:
        raise NoteError("the ECDSA public key is too long to be a P-256/384/521 SPKI")
    try:
        key = load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm):
        raise NoteError("the ECDSA public key is not a DER SubjectPublicKeyInfo") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, _ECDSA_CURVES):
        raise NoteError("a type 0x02 note key must be an ECDSA P-256, P-384 or P-521 key")
    return key


def ecdsa_verifies(public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a DER ECDSA signature over SHA-256 of ``message``."""
    try:
        public_key.verify(signature, message, ec.ECDSA(SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def ed25519_verifies(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def matching_signatures(
    signatures: Iterable[Signature], name: str, key_id: bytes
) -> list[Signature]:
    """Return the signatures whose name and key ID both match."""
    return [s for s in signatures if s.name == name and s.key_id == key_id]


def verify_note(note: Note, name: str, public_key: bytes) -> Signature:
    """Verify the signature of log key (``name``, ``public_key``) on ``note``.

    ``public_key`` is 32 raw bytes (Ed25519, type 0x01) or an SPKI DER (ECDSA, type 0x02).

    Lines from other keys are ignored. Every line naming this key must verify;
    the first one is returned.
    """
    key_id = log_key_id(name, public_key)
    if log_key_type(public_key) == SIG_ECDSA:
        ecdsa_key = load_ecdsa_public_key(public_key)

        def verifies(signature: bytes, message: bytes) -> bool:
            return ecdsa_verifies(ecdsa_key, signature, message)
    else:
        ed_key = load_public_key(public_key)

        def verifies(signature: bytes, message: bytes) -> bool:
            return ed25519_verifies(ed_key, signature, message)

    message = _check_text(note.text)
    found = matching_signatures(note.signatures, name, key_id)
    if not found:
        raise NoteVerificationError(
            f"the note carries no signature from key {name}+{key_id.hex()}; "
            "check that the expected key signed it"
        )
    for sig in found:
        if not verifies(sig.signature, message):
            raise NoteVerificationError(
                f"the signature from key {name}+{key_id.hex()} does not verify: "
                "the note was altered or signed by another key"
            )
    return found[0]
