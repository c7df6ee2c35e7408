"""Hiding commitments: what a ledger leaf says without saying it to those not entitled.

A leaf (format 2) keeps in clear only what verification and ordering need:
``type``, ``ts``, ``node`` and ``v``. Every other field the type allows, present
or not, enters the leaf as a commitment::

    c[field] = HMAC-SHA-256(key = salt (32 random bytes, fresh per field and entry),
                            msg = "sekisho-commit-v2" 0x00 type 0x00 field 0x00 JSON(value))

where JSON is canonical JSON and an absent field is ``null``. Without the salt the
commitment reveals nothing about the value (HMAC under a random 256-bit key is a
PRF), so a dictionary of labels, names or file hashes tells nothing; with the
salt and the value anyone can check it, and nobody can open it to another value.

The opening of an entry (values and salts) stays in the node's database; a
*partial* opening holds some fields only, so a person can be shown what an
entry says about their own action, or a reader the hashes of a document, and
nothing else. Entries written before commitments (format 1, fields in clear)
still parse; they have no opening.
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
CLEAR_FIELDS = frozenset({"type", "ts", "node", "v"})


class OpeningError(ValueError):
    """An opening that does not match its leaf."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment(entry_type: str, field: str, value: Any, salt: bytes) -> str:
    """The hex commitment of one field's value under its salt."""
    message = b"\x00".join((_DOMAIN, entry_type.encode(), field.encode(), _canonical(value)))
    return hmac.new(salt, message, hashlib.sha256).hexdigest()


def commit_fields(
    entry_type: str, allowed: Iterable[str], values: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """(commitments, opening) for every allowed field; absent ones are committed as null."""
    commitments: dict[str, str] = {}
    opened: dict[str, Any] = {}
    salts: dict[str, str] = {}
    for field in sorted(allowed):
        value = values.get(field)
        salt = os.urandom(SALT_BYTES)
        commitments[field] = commitment(entry_type, field, value, salt)
        opened[field] = value
        salts[field] = salt.hex()
    return commitments, {"fields": opened, "salts": salts}


def check_opening(leaf: Mapping[str, Any], opening: Mapping[str, Any]) -> dict[str, Any]:
    """The opened fields, after checking each against the leaf's commitment.

    Raises OpeningError naming the first field that does not match.
    """
    commitments = leaf.get("c")
    fields, salts = opening.get("fields"), opening.get("salts")
    if not isinstance(commitments, dict) or not isinstance(fields, dict):
        raise OpeningError("not a committed entry and its opening")
    if not isinstance(salts, dict) or set(salts) != set(fields):
        raise OpeningError("an opening holds a salt for every opened field")
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
