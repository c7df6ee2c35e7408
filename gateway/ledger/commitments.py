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


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(entry_type: str, field: str, value: Any, salt: bytes) -> str:
    """The hex commitment of one field's value under its salt."""
    message = b"\x00".join((_DOMAIN, entry_type.encode(), field.encode(), _canonical(value)))
    return hmac.digest(salt, message, "sha256").hex()


def fields_root(commitments: Mapping[str, str]) -> str:
    """The leaf's one commitment ``c``: over every field's commitment (hex SHA-256)."""
    return hashlib.sha256(_FIELDS_DOMAIN + _canonical(dict(commitments))).hexdigest()


def _salt(seed: bytes, field: str) -> bytes:
    return hmac.digest(seed, field.encode(), "sha256")


def expand(entry_type: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The full opening (every ``f``, every value and salt) of a stored opening."""
    try:
        seed = bytes.fromhex(str(stored["seed"]))
        values = stored["fields"]
    except (KeyError, ValueError):
        raise OpeningError("not a stored opening") from None
    if len(seed) != SALT_BYTES or not isinstance(values, dict):
        raise OpeningError("not a stored opening")
    salts = {field: _salt(seed, field) for field in values}
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
    commitments = {f: commitment(entry_type, f, v, _salt(seed, f)) for f, v in fields.items()}
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
    return _canonical(opening)


def decode_opening(data: bytes | str) -> dict[str, Any]:
    """An opening from its stored or served form."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpeningError(f"not an opening: {exc}") from None
    if not isinstance(value, dict):
        raise OpeningError("an opening is a JSON object")
    return value
