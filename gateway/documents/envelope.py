"""Envelope encryption: per-version data keys wrapped by the token KEK, bound to the label."""

from __future__ import annotations

import hashlib

from gateway.policy.labels import Label

AD_PREFIX = b"sekisho-document-v1"


def associated_data(document_id: str, version: int, label: Label) -> bytes:
    """The AEAD associated data: document id, version and canonical label, unambiguously joined."""
    return b"\x00".join(
        [AD_PREFIX, document_id.encode(), str(version).encode(), label.canonical_bytes()]
    )


def label_digest(label: Label) -> str:
    """What the ledger records of a label: its SHA-256 (compartment names can be sensitive)."""
    return hashlib.sha256(label.canonical_bytes()).hexdigest()
