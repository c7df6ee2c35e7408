"""Titles to show beside document ids in the trail and a person's own history.

A title is shown only where the reader may read the document now (its current
label, not destroyed): a hidden document stays an id, and a lowered clearance
hides titles the person once saw.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.auth.identity import Identity
from gateway.documents.models import Document
from gateway.policy.pdp import PolicyDecisionPoint


async def readable_titles(
    pdp: PolicyDecisionPoint, identity: Identity, document_ids: Iterable[str | None]
) -> dict[str, str]:
    """``{id: title}`` for the given documents that ``identity`` may read now."""
    wanted = {document_id for document_id in document_ids if document_id}
    if not wanted:
        return {}
    rows = await Document.filter(id__in=sorted(wanted), destroyed=False).only(
        "id", "title", "label"
    )
    return {row.id: row.title for row in rows if pdp.may_read(identity, row.label).granted}
