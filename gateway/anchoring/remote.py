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
from typing import Any

from gateway.anchoring.checks import AnchorCheck, FetchedAnchor, LogIdentity, check_fetched
from gateway.anchoring.tsa import TrustedTsa
from gateway.errors import Unavailable
from gateway.ledger.client import HttpLedgerClient
from gateway.tlog.merkle import EMPTY_ROOT, ProofError, verify_consistency


async def listed_anchors(client: HttpLedgerClient) -> list[FetchedAnchor]:
    """Every anchoring the node lists, with its note and reply (list before auditing:
    each then names a size the audited tree reaches); none where nothing is listed
    (a mirror's prefix)."""
    listing = await client.api_json("anchors", optional=True)
    if listing is None:
        return []
    items = listing.get("anchors")
    if not isinstance(items, list):
        raise Unavailable("the node's anchoring list has no 'anchors' array")
    found = []
    for item in items:
        anchor = _parse(item)
        note = await client.api(f"anchors/{anchor.id}/checkpoint")
        reply = await client.api(f"anchors/{anchor.id}/reply")
        found.append(
            FetchedAnchor(
                anchor.id,
                anchor.size,
                anchor.root,
                note.decode("utf-8", errors="replace"),
                anchor.tsa,
                anchor.gen_time,
                reply,
                anchor.token_sha256,
            )
        )
    return found


def _parse(item: Any) -> FetchedAnchor:
    try:
        return FetchedAnchor(
            id=_int(item["id"]),
            size=_int(item["size"]),
            root=base64.b64decode(str(item["root"]), validate=True),
            note="",
            tsa=str(item["tsa"]),
            gen_time=datetime.fromisoformat(str(item["gen_time"])),
            reply=b"",
            token_sha256=str(item.get("token_sha256") or ""),
        )
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise Unavailable(
            f"the node lists an anchoring that is not well formed: {item!r:.200}"
        ) from None


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(value)
    return value


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
