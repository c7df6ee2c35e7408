"""Build the document services for a node."""

from __future__ import annotations

from gateway.config import Settings
from gateway.documents.access import AccessRecorder
from gateway.documents.approvals import two_person_rule
from gateway.documents.blobstore import BlobStore
from gateway.documents.catalogue import DocumentCatalogue
from gateway.documents.context import DocumentContext
from gateway.documents.piece_hashing import PieceHashHelpers
from gateway.ledger.service import LedgerService
from gateway.policy.pdp import PolicyDecisionPoint
from gateway.ttlcache import TtlCache
from hsm import Token


def build_documents(
    settings: Settings,
    token: Token,
    ledger: LedgerService,
    pdp: PolicyDecisionPoint,
    blobs: BlobStore,
) -> DocumentCatalogue:
    """The document catalogue on the given decision point and blob store."""
    context = DocumentContext(
        token=token,
        ledger=ledger,
        blobs=blobs,
        pdp=pdp,
        recorder=AccessRecorder(ledger),
        kek_label=settings.keys.kek,
        max_bytes=settings.http.max_body_mib * 1024 * 1024,
        data_keys=TtlCache(settings.documents.key_cache_seconds),
        step_up_levels=step_up_levels(settings),
        piece_helpers=PieceHashHelpers(settings.documents.hashing_helpers)
        if settings.documents.hashing_helpers
        else None,
    )
    rule = two_person_rule(
        pdp.scheme, settings.documents.two_person_levels, settings.documents.two_person_window
    )
    return DocumentCatalogue(context, rule)


def step_up_levels(settings: Settings) -> frozenset[str]:
    """The levels at or above the lowest of ``auth.security_key_levels`` (none if unset)."""
    levels = settings.clearance.levels
    chosen = [levels.index(level) for level in settings.auth.security_key_levels]
    return frozenset(levels[min(chosen) :]) if chosen else frozenset()
