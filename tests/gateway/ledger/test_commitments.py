"""Field commitments (entry format 2): the bytes are the documented ones, openings check."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

import pytest

from gateway.ledger import commitments
from gateway.ledger.commitments import OpeningError, check_opening, commit_fields, expand


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _reference_root(entry_type: str, seed: bytes, fields: dict[str, Any]) -> str:
    """The leaf's ``c`` computed from the module docstring with the standard library only."""
    commitments_by_field = {}
    for field in sorted(fields):
        salt = hmac.digest(seed, field.encode(), "sha256")
        message = b"\x00".join(
            (b"sekisho-commit-v2", entry_type.encode(), field.encode(), _canonical(fields[field]))
        )
        commitments_by_field[field] = hmac.digest(salt, message, "sha256").hex()
    return hashlib.sha256(b"sekisho-fields-v2\x00" + _canonical(commitments_by_field)).hexdigest()


@pytest.mark.parametrize("key_size", [0, 1, 31, 32, 33, 63, 64])
def test_the_fast_hmac_gives_the_standard_bytes(key_size: int) -> None:
    key = os.urandom(key_size)
    for message in (b"", b"document", os.urandom(200), "Zoë".encode()):
        mac = commitments._HmacSha256(key)
        assert mac.digest(message) == hmac.digest(key, message, "sha256")
        assert mac.digest(message) == hmac.digest(key, message, "sha256")  # states reused


def test_keys_longer_than_a_block_are_refused() -> None:
    with pytest.raises(ValueError, match="at most one SHA-256 block"):
        commitments._HmacSha256(os.urandom(65))


def test_a_leaf_commitment_is_the_documented_one() -> None:
    values = {"document": "d-1", "person": "alice", "address": "10.0.0.7", "label": "SECRET//Zoë"}
    root, stored = commit_fields("document.accessed", [*values, "reason", "size"], values)
    seed = bytes.fromhex(stored["seed"])
    expected = {**values, "reason": None, "size": None}
    assert stored["fields"] == expected
    assert root == _reference_root("document.accessed", seed, expected)
    opened = expand("document.accessed", stored)
    assert opened["salts"]["person"] == hmac.digest(seed, b"person", "sha256").hex()


def test_an_opening_checks_and_a_changed_value_is_named() -> None:
    root, stored = commit_fields("auth.sign_in", ["person", "outcome"], {"person": "bob"})
    leaf = {"type": "auth.sign_in", "c": root}
    assert check_opening(leaf, stored) == {"outcome": None, "person": "bob"}
    shown = expand("auth.sign_in", stored)
    shown["fields"]["person"] = "mallory"
    with pytest.raises(OpeningError, match="field person does not match"):
        check_opening(leaf, shown)
