"""The anchorings as officers and the API see them: re-checked against the TSAs and the tree."""

from __future__ import annotations

from gateway.anchoring.checks import LIST_LIMIT, AnchorCheck, LogIdentity, check_anchors
from gateway.anchoring.service import Anchoring
from gateway.ledger.checkpoint_signer import CheckpointSigner
from gateway.ledger.service import LedgerService


def log_identity(signer: CheckpointSigner) -> LogIdentity:
    """The log key stored checkpoint notes must carry."""
    return LogIdentity(signer.origin, signer.origin, signer.public_key)


async def current_checks(
    ledger: LedgerService, anchoring: Anchoring, limit: int = LIST_LIMIT
) -> list[AnchorCheck]:
    """The newest anchorings, re-checked against the configured TSAs and the current tree.

    Token and note signatures already verified for the same stored bytes come from
    the service's memo (the list is public); the tree is read afresh every time.
    """
    return await check_anchors(
        ledger.store, anchoring.tsas, log_identity(ledger.signer), limit, anchoring.memo
    )
