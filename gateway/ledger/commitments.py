"""Hiding commitments: what a ledger leaf says without saying it to those not entitled.

A leaf (format 2) keeps in clear only what verification and ordering need:
``type``, ``ts``, ``node`` and ``v``, plus one commitment ``c``. Every other
field the type allows, present or not, is committed on its own::

    f[field] = HMAC-SHA-256(key = salt[field],
                            msg = "sekisho-commit-v2" 0x00 type 0x00 field 0x00 JSON(value))
    salt[field] = HMAC-SHA-256(key = seed (32 random bytes, fresh per entry), msg = field)

where JSON is canonical JSON and an absent field is ``null``; the leaf holds
``c = SHA-256("sekisho-fields-v2" 0x00 JSON(f))``, one 32-byte value, so not
even the field names or their number show. Without the salts nothing about a
value can be learnt (HMAC under a random 256-bit key is a PRF), so a dictionary
of labels, names or file hashes tells nothing; with the opening anyone can check
it, and nobody can open it to another value.

The node keeps the seed and the values (the *stored* opening, a few hundred bytes)
in its database. What it shows is an *opening*: every ``f``, and the values and
salts of the fields shown; a *partial* opening shows some fields only, so a
person can be shown what an entry says about their own action, or a reader the
hashes of a document, and nothing else (a field's salt is a PRF output of the
seed: it tells nothing about the other fields' salts). Entries written before
commitments (format 1, fields in clear) still parse; they have no opening.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

FORMAT = 2
SALT_BYTES = 32
_DOMAIN = b"sekisho-commit-v2"
_FIELDS_DOMAIN = b"sekisho-fields-v2\x00"
CLEAR_FIELDS = frozenset({"type", "ts", "node", "v"})


class OpeningError(ValueError):
    """An opening that does not match its leaf."""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""One encoder for every canonical value: ``json.dumps`` with these options builds a
new encoder on every call, ten times the cost of encoding a short field."""


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no insignificant whitespace, UTF-8."""
    return _CANONICAL.encode(value).encode()


_SHA256 = hashlib.sha256()
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class _HmacSha256:
    """HMAC-SHA-256 (RFC 2104) under one key of at most 64 bytes.

    The same bytes as ``hmac.digest(key, message, "sha256")``, at about half its
    cost: OpenSSL 3 looks the digest up again on every ``hmac.digest`` call, while
    copying a prepared SHA-256 state does not, and one key's padded states serve
    all the fields of an entry (tests/gateway/ledger/test_commitments.py checks
    the equality).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            raise ValueError("HMAC keys here are at most one SHA-256 block")
        block = key.ljust(64, b"\x00")
        self._inner = _SHA256.copy()
        self._inner.update(block.translate(_INNER_PAD))
        self._outer = _SHA256.copy()
        self._outer.update(block.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        """The MAC of ``message``."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def commitment(entry_type: str, field: str, value: Any, salt: bytes) -> str:
    """The hex commitment of one field's value under its salt."""
    message = b"\x00".join((_DOMAIN, entry_type.encode(), field.encode(), canonical(value)))
    return _HmacSha256(salt).digest(message).hex()


def fields_root(commitments: Mapping[str, str]) -> str:
    """The leaf's one commitment ``c``: over every field's commitment (hex SHA-256)."""
    return hashlib.sha256(_FIELDS_DOMAIN + canonical(dict(commitments))).hexdigest()


def _salts(seed: bytes, fields: Iterable[str]) -> dict[str, bytes]:
    """Each field's salt: HMAC-SHA-256 under the entry's seed of the field's name."""
    mac = _HmacSha256(seed)
    return {field: mac.digest(field.encode()) for field in fields}


def expand(entry_type: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The full opening (every ``f``, every value and salt) of a stored opening."""
    try:
        seed = bytes.fromhex(str(stored["seed"]))
        values = stored["fields"]
    except (KeyError, ValueError):
        raise OpeningError("not a stored opening") from None
    if len(seed) != SALT_BYTES or not isinstance(values, dict):
        raise OpeningError("not a stored opening")
    salts = _salts(seed, values)
    commitments = {f: commitment(entry_type, f, values[f], salts[f]) for f in sorted(values)}
    return {
        "f": commitments,
        "fields": dict(values),
        "salts": {field: salt.hex() for field, salt in salts.items()},
    }


def commit_fields(
    entry_type: str, allowed: Iterable[str], values: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(the leaf's commitment, the stored opening) for every allowed field (absent as null)."""
    seed = os.urandom(SALT_BYTES)
    fields = {field: values.get(field) for field in sorted(allowed)}
    salts = _salts(seed, fields)
    commitments = {f: commitment(entry_type, f, v, salts[f]) for f, v in fields.items()}
    return fields_root(commitments), {"seed": seed.hex(), "fields": fields}


def check_opening(leaf: Mapping[str, Any], opening: Mapping[str, Any]) -> dict[str, Any]:
    """The opened fields, after checking each against the leaf's commitment.

    Takes an opening as shown (``f``, fields, salts) or as stored (seed, fields).
    Raises OpeningError naming the first field that does not match.
    """
    if "seed" in opening:
        opening = expand(str(leaf.get("type")), opening)
    root, commitments = leaf.get("c"), opening.get("f")
    fields, salts = opening.get("fields"), opening.get("salts")
    if not isinstance(root, str) or not isinstance(commitments, dict):
        raise OpeningError("not a committed entry and its opening")
    if not isinstance(fields, dict) or not isinstance(salts, dict) or set(salts) != set(fields):
        raise OpeningError("an opening holds a salt for every opened field")
    if not hmac.compare_digest(fields_root(commitments), root):
        raise OpeningError("field commitments do not match the entry")
    entry_type = str(leaf.get("type"))
    for field in sorted(fields):
        expected = commitments.get(field)
        try:
            salt = bytes.fromhex(str(salts[field]))
        except ValueError:
            raise OpeningError(f"field {field}: the salt is not hex") from None
        if expected is None or len(salt) != SALT_BYTES:
            raise OpeningError(f"field {field} is not committed in this entry")
        if not hmac.compare_digest(commitment(entry_type, field, fields[field], salt), expected):
            raise OpeningError(f"field {field} does not match its commitment")
    return dict(fields)


def partial(opening: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The opening of some fields only (the others stay hidden)."""
    wanted = [f for f in fields if f in opening["fields"]]
    return {
        "f": opening["f"],
        "fields": {f: opening["fields"][f] for f in wanted},
        "salts": {f: opening["salts"][f] for f in wanted},
    }


def encode_opening(opening: Mapping[str, Any]) -> bytes:
    """The stored and served form of an opening: canonical JSON."""
    return canonical(opening)


def decode_opening(data: bytes | str) -> dict[str, Any]:
    """An opening from its stored or served form."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpeningError(f"not an opening: {exc}") from None
    if not isinstance(value, dict):
        raise OpeningError("an opening is a JSON object")
    return value
