"""What binds a document version's ciphertext and ledger entries to its label.

The associated data of the chunked AEAD (document id, version and canonical
label: relabelling without re-encrypting fails to decrypt) and the label digest
ledger entries carry. Data keys are wrapped by the token KEK in
``writer.py`` (rotation in ``kek.py``); the AEAD is ``stream_aead.py``.
"""

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
