"""The anchorings of a node verified from outside (``sekisho ledger verify --url``).

The public list (``/api/v1/ledger/anchors``) names each anchoring; its signed
note and the TSA's reply are downloaded and checked here as local ``ledger
verify`` checks stored ones: the token against the TSA certificates configured
here, the note against the pinned log key, and the anchored root against the
audited tree through a consistency proof to the audited size and root.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from pydantic import ValidationError

from gateway.anchoring.answers import AnchorList
from gateway.anchoring.checks import AnchorCheck, FetchedAnchor, LogIdentity, check_fetched
from gateway.anchoring.tsa import TrustedTsa
from gateway.errors import Unavailable
from gateway.ledger.client import HttpLedgerClient
from gateway.tlog.merkle import EMPTY_ROOT, ProofError, verify_consistency


async def listed_anchors(client: HttpLedgerClient) -> list[FetchedAnchor]:
    """Every anchoring the node lists, with its note and reply (list before auditing:
    each then names a size the audited tree reaches); none where nothing is listed
    (a mirror's prefix). The list is read with the model the node answers with."""
    listing = await client.api_json("anchors", optional=True)
    if listing is None:
        return []
    try:
        views = AnchorList.model_validate(listing).anchors
        parsed = [
            (v, base64.b64decode(v.root, validate=True), datetime.fromisoformat(v.gen_time))
            for v in views
        ]
    except (ValidationError, ValueError, binascii.Error) as exc:
        raise Unavailable(f"the node's anchoring list is not well formed: {exc!s:.300}") from None
    found = []
    for view, root, gen_time in parsed:
        note = await client.api(f"anchors/{view.id}/checkpoint")
        reply = await client.api(f"anchors/{view.id}/reply")
        found.append(
            FetchedAnchor(
                view.id,
                view.size,
                root,
                note.decode("utf-8", errors="replace"),
                view.tsa,
                gen_time,
                reply,
                view.token_sha256 or "",
            )
        )
    return found


async def check_remote_anchors(
    client: HttpLedgerClient,
    anchors: list[FetchedAnchor],
    tsas: list[TrustedTsa],
    log_key: LogIdentity,
    size: int,
    root: bytes,
) -> list[AnchorCheck]:
    """Each downloaded anchoring re-checked against the tree audited at ``size``/``root``."""
    by_name = {tsa.name: tsa for tsa in tsas}
    return [
        check_fetched(a, by_name.get(a.tsa), log_key, await _tree_problem(client, a, size, root))
        for a in anchors
    ]


async def _tree_problem(
    client: HttpLedgerClient, anchor: FetchedAnchor, size: int, root: bytes
) -> str | None:
    if anchor.size > size:
        return f"the audited tree has only {size} entries, the anchor names {anchor.size}"
    if anchor.size == 0:
        return None if anchor.root == EMPTY_ROOT else "the anchored root of size 0 is not empty"
    answer = await client.api_json(f"proof/consistency?old={anchor.size}&new={size}")
    try:
        assert answer is not None  # not optional: a 404 raised
        proof = [base64.b64decode(str(h), validate=True) for h in answer.get("proof", [])]
        verify_consistency(anchor.size, size, proof, anchor.root, root)
    except (ProofError, ValueError, TypeError, binascii.Error) as exc:
        return f"the tree's root at size {anchor.size} is not the anchored root ({exc})"
    return None
