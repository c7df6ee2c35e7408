"""Ledger entries: canonical JSON with a type, a timestamp, the writing node and commitments.

Entries never carry titles or contents, and since format 2 they carry nothing
about a document, a label, a person, a client, an address, a reason, a size or
a hash in clear either: every field but ``type``, ``ts`` and ``node`` is a
hiding commitment (gateway/ledger/commitments.py) whose opening stays in the
node's database. Each type has a fixed set of allowed fields so a caller cannot
slip free text (a title, a file name) into the log by accident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.errors import BadRequest
from gateway.ledger.commitments import (
    FORMAT,
    OpeningError,
    canonical,
    check_opening,
    commit_fields,
    decode_opening,
    encode_opening,
)

MAX_ENTRY_BYTES = 16 * 1024

_COMMON = {"type", "ts", "node"}
ENTRY_FIELDS: dict[str, set[str]] = {
    "document.registered": {
        "document",
        "version",
        "label",
        "plaintext_sha256",
        "ciphertext_sha256",
        "ciphertext_root",
        "size",
        "kek",
        "kek_version",
        "actor",
    },
    "document.accessed": {
        "document",
        "version",
        "actor",
        "action",
        "outcome",
        "reason",
        "source",
        "request",
    },
    "document.destroyed": {"document", "version", "actor", "reason_code"},
    "oversight.viewed": {"actor", "view", "filters"},
    "document.relabelled": {
        "document",
        "version",
        "actor",
        "old_label",
        "new_label",
        "reason_sha256",
    },
    "signature.issued": {
        "client",
        "key",
        "key_version",
        "digest",
        "hash",
        "format",
        "kind",
        "serial",
        "count",
    },
    "record.anchored": {
        "client",
        "owner",
        "subject_sha256",
        "kind",
        "digest",
        "metadata_sha256",
        "record",
        "sequence",
        "previous",
        "rule",
        "rule_version",
        "handover_sha256",
    },
    "custody.rule_changed": {"rule", "version", "rule_sha256", "actor", "source"},
    "custody.refused": {
        "client",
        "owner",
        "subject_sha256",
        "kind",
        "digest",
        "rule",
        "rule_version",
        "sequence",
        "code",
    },
    "custody.handover": {
        "handover",
        "change",
        "party",
        "owner",
        "subject_sha256",
        "handover_sha256",
        "key",
        "key_version",
    },
    "principal.changed": {
        "principal",
        "actor",
        "change",
        "fields",
        "level",
        "roles",
        "outcome",
        "source",
        "reason",
        "token",
        "certificate",
    },
    "key.created": {"key", "algorithm", "key_id", "actor", "spki_sha256"},
    "key.rotated": {"key", "old_version", "new_version", "algorithm", "actor", "spki_sha256"},
    "key.registered": {
        "key",
        "version",
        "label",
        "algorithm",
        "purpose",
        "spki_sha256",
        "certificate_sha256",
        "actor",
    },
    "client.changed": {
        "client",
        "actor",
        "change",
        "fields",
        "scopes",
        "keys",
        "rate_per_minute",
        "cert_sha256",
        "token",
        "source",
        "chain_writers",
    },
    "key.removed": {"key", "version", "algorithm", "actor"},
    "alert.raised": {
        "alert",
        "record",
        "subject_sha256",
        "rule",
        "document",
        "version",
        "detail_code",
        "index",
        "actor",
        "source",
        "reason",
    },
    "approval.requested": {
        "request",
        "document",
        "version",
        "action",
        "actor",
        "new_label",
        "reason_sha256",
        "expires",
    },
    "approval.granted": {"request", "document", "version", "action", "actor"},
    "approval.refused": {"request", "document", "version", "action", "actor", "reason_code"},
    "approval.expired": {"request", "document", "version", "action"},
    "checkpoint.anchored": {"tsa", "size", "root_hash", "token_sha256", "gen_time", "actor"},
    "ledger.started": {"origin"},  # a log's first entry: its leaf hash is the instance id
    "auth.sign_in": {"principal", "method", "outcome", "reason", "source"},
    "auth.locked_out": {"principal", "scope", "source", "failures", "until"},
    "auth.security_key": {
        "principal",
        "actor",
        "change",
        "credential",
        "name",
        "outcome",
        "source",
    },
    "auth.step_up": {"principal", "method", "outcome", "reason", "source"},
}
ENTRY_TYPES = frozenset(ENTRY_FIELDS)
_SAFE_STRING = re.compile(r"[\x20-\x7e]{0,256}")


class EntryError(BadRequest):
    """An entry would not be a valid, safe ledger leaf."""

    code = "invalid_entry"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8."""
    return canonical(value)


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-23T20:00:00.123Z``."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CommittedEntry(bytes):
    """The canonical bytes of a leaf, carrying the opening the store keeps beside it."""

    opening: bytes


def opening_of(data: bytes) -> bytes | None:
    """The opening an entry carries to the store (None for bytes without one)."""
    opening: bytes | None = getattr(data, "opening", None)
    return opening


def with_opening(data: bytes, opening: bytes | None) -> bytes:
    """Stored entry bytes again carrying their stored opening (plain bytes without one)."""
    if opening is None:
        return bytes(data)
    entry = CommittedEntry(data)
    entry.opening = bytes(opening)
    return entry


def make_entry(
    entry_type: str, node: str, /, *, at: datetime | None = None, **fields: Any
) -> CommittedEntry:
    """Build one committed entry, refusing unknown types and fields.

    The leaf holds ``type``, ``ts`` (``at``, default now), ``node``, the format
    ``v`` and a commitment to every allowed field; ``.opening`` is what the
    ledger store keeps.
    """
    allowed = ENTRY_FIELDS.get(entry_type)
    if allowed is None:
        raise EntryError(f"unknown ledger entry type {entry_type!r}")
    unknown = set(fields) - allowed
    if unknown:
        raise EntryError(f"{entry_type} entries have no field(s) {sorted(unknown)}")
    values: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    _check_values(values)
    root, opening = commit_fields(entry_type, allowed, values)
    body = {"type": entry_type, "node": node, "ts": utc_timestamp(at), "v": FORMAT, "c": root}
    entry = CommittedEntry(canonical_json(body))
    if len(entry) > MAX_ENTRY_BYTES:
        raise EntryError(f"a ledger entry is at most {MAX_ENTRY_BYTES} bytes")
    entry.opening = encode_opening(opening)
    return entry


def open_entry(data: bytes, opening: bytes | None) -> dict[str, Any]:
    """The entry with its opened fields (format 2), or as it is (format 1, in clear).

    Raises EntryError when the opening does not match the leaf.
    """
    leaf = parse_entry(data)
    if leaf.get("v") != FORMAT:
        return leaf
    if opening is None:
        raise EntryError("this entry's opening is missing")
    try:
        fields = check_opening(leaf, decode_opening(opening))
    except OpeningError as exc:
        raise EntryError(f"the opening does not match the entry: {exc}") from None
    clear = {k: leaf[k] for k in ("type", "ts", "node")}
    return {**{k: v for k, v in fields.items() if v is not None}, **clear}


def _check_values(value: Any) -> None:
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and len(value) <= 256:
            return
        if not _SAFE_STRING.fullmatch(value):
            raise EntryError("ledger entry strings are short printable ASCII identifiers")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_values(str(key))
            _check_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_values(item)
    elif value is not None and not isinstance(value, bool | int | float):
        raise EntryError(f"ledger entry values cannot be {type(value).__name__}")


def check_entry(data: bytes) -> None:
    """Refuse bytes that are not one valid entry, before they join a batch of others."""
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError(f"a ledger entry is at most {MAX_ENTRY_BYTES} bytes")
    parse_entry(data)


def parse_entry(data: bytes) -> dict[str, Any]:
    """Decode an entry and check it is canonical and typed."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EntryError(f"not a JSON entry: {exc}") from None
    if not isinstance(value, dict) or value.get("type") not in ENTRY_TYPES:
        raise EntryError("an entry is a JSON object with a known type")
    if canonical_json(value) != data:
        raise EntryError("entry is not in canonical JSON form")
    return value
