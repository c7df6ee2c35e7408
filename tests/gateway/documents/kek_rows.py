"""Document versions with real wrapped data keys, for KEK rotation tests."""

from __future__ import annotations

import asyncio
import os
import uuid

from gateway.documents.models import Document, DocumentVersion
from hsm import Token


async def seed_versions(token: Token, kek_label: str, count: int) -> dict[int, bytes]:
    """``count`` versions of one document, each with a fresh data key wrapped under
    ``kek_label`` (KEK version 1); returns row id -> plaintext data key."""
    document = await Document.create(
        id=str(uuid.uuid4()),
        title="rotation test",
        level_rank=0,
        label="UNCLASSIFIED",
        created_by="test",
    )
    keys = [os.urandom(32) for _ in range(count)]
    wrapped = await asyncio.gather(*(token.wrap_data_key(kek_label, key) for key in keys))
    await DocumentVersion.bulk_create(
        [
            DocumentVersion(
                document_id=document.id,
                version=n + 1,
                label="UNCLASSIFIED",
                size=1,
                ciphertext_size=1,
                segment_size=65536,
                plaintext_sha256="0" * 64,
                ciphertext_sha256="0" * 64,
                wrapped_key=wrapped[n],
                kek_label=kek_label,
                kek_version=1,
                blob_key=f"blob-{document.id}-{n}",
                ledger_queue_id=n,
                created_by="test",
            )
            for n in range(count)
        ],
        batch_size=500,
    )
    rows = await DocumentVersion.filter(document_id=document.id).values_list("id", "version")
    return {int(row_id): keys[int(version) - 1] for row_id, version in rows}


async def check_keys(token: Token, expected: dict[int, bytes]) -> dict[int, int]:
    """Every row unwraps, under the KEK it names, to its original data key.

    Returns how many rows each KEK version wraps.
    """
    rows = await DocumentVersion.filter(id__in=list(expected)).values(
        "id", "wrapped_key", "kek_label", "kek_version"
    )
    assert len(rows) == len(expected)
    keys = await asyncio.gather(
        *(token.unwrap_data_key(r["kek_label"], bytes(r["wrapped_key"])) for r in rows)
    )
    counts: dict[int, int] = {}
    for row, key in zip(rows, keys, strict=True):
        assert key == expected[row["id"]], f"row {row['id']} lost its data key"
        counts[row["kek_version"]] = counts.get(row["kek_version"], 0) + 1
    return counts
