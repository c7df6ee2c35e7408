"""add-checkpoint end to end: parse, check, store the new size atomically, then cosign."""

from __future__ import annotations

import logging

from gateway.tlog.witness_protocol import format_add_checkpoint_response
from gateway.witness.core import (
    Inconsistent,
    ProofRejected,
    SizeConflict,
    check_submission,
    parse_submission,
)
from gateway.witness.cosigner import Cosigner
from gateway.witness.store import WitnessStore

log = logging.getLogger("sekisho.witness")


class WitnessService:
    """Cosigns checkpoints that extend what it holds; keeps evidence of what contradicts it."""

    def __init__(self, store: WitnessStore, cosigner: Cosigner) -> None:
        self.store = store
        self.cosigner = cosigner

    async def add_checkpoint(self, body: bytes) -> str:
        """The 200 response body (cosignature lines); raises the spec's errors otherwise."""
        sub = parse_submission(body)
        record = await self.store.log(sub.checkpoint.origin)
        try:
            check_submission(record, sub)
        except (Inconsistent, ProofRejected) as exc:
            if exc.evidence is not None and await self.store.keep(exc.evidence):
                level = logging.ERROR if exc.evidence.alarm else logging.WARNING
                log.log(
                    level,
                    "witness: %s for %s: %s (kept as evidence)",
                    exc.evidence.kind,
                    exc.evidence.origin,
                    exc.message,
                )
            raise
        assert record is not None  # check_submission raised UnknownLog otherwise
        if not await self.store.advance(record, sub.checkpoint, sub.request.checkpoint_note):
            size = await self.store.current_size(record.log_id)
            raise SizeConflict(f"another request moved this witness to size {size} meanwhile", size)
        signature = await self.cosigner.cosign(sub.note.text)
        return format_add_checkpoint_response([signature])
