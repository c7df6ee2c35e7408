"""What the document services share: token, ledger, blobs, policy, recorder, limits."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.auth.identity import Identity, StepUpRequired
from gateway.documents.access import AccessRecorder
from gateway.documents.blobstore import BlobStore
from gateway.documents.lookup import document_and_version
from gateway.documents.models import Document, DocumentVersion, KekVersion
from gateway.documents.piece_hashing import PieceHashHelpers
from gateway.errors import NotFound
from gateway.ledger.service import LedgerService
from gateway.policy.pdp import PolicyDecisionPoint, RoleRule
from gateway.ttlcache import TtlCache
from hsm import Token

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NOT_FOUND_MESSAGE = "no such document"
# Actions that only read a version; without a version they take the newest readable one.
READ_ACTIONS = frozenset({"metadata", "versions", "content", "receipt", "check"})
# Actions that reveal the plaintext (or confirm a guess of it): these need a step-up.
CONTENT_ACTIONS = frozenset({"content", "check"})
STEP_UP_MESSAGE = (
    "this document's level needs a sign-in with a security key or a client certificate: "
    "step up in the portal (/step-up) or use a certificate-bound session"
)


def newest_readable(
    pdp: PolicyDecisionPoint, identity: Identity, rows: Iterable[DocumentVersion]
) -> DocumentVersion | None:
    """The first of ``rows`` (newest first) that ``identity`` may read, if any."""
    return next((row for row in rows if pdp.may_read(identity, row.label).granted), None)


def well_formed_id(document_id: str) -> bool:
    """True when ``document_id`` has the shape of a document id (a lower-case UUID)."""
    return _UUID.fullmatch(document_id) is not None


@dataclass
class DocumentContext:
    """Dependencies of the document services."""

    token: Token
    ledger: LedgerService
    blobs: BlobStore
    pdp: PolicyDecisionPoint
    recorder: AccessRecorder
    kek_label: str
    max_bytes: int
    segment_size: int = 64 * 1024
    # unwrapped data keys by (KEK label, wrapped bytes); see docs/documents.md
    data_keys: TtlCache[tuple[str, bytes], bytes] = field(default_factory=lambda: TtlCache(0))
    # processes that hash part of a long download's pieces (documents.hashing_helpers)
    piece_helpers: PieceHashHelpers | None = None
    # levels whose content needs a strong sign-in (auth.security_key_levels and all above)
    step_up_levels: frozenset[str] = frozenset()

    async def current_kek(self) -> tuple[str, int]:
        """The active key-encryption key: label and version."""
        row = await KekVersion.filter(status="active").order_by("-version").first()
        return (row.label, row.version) if row else (self.kek_label, 1)

    async def find_readable(
        self,
        identity: Identity,
        document_id: str,
        *,
        action: str,
        source: str,
        version: int | None = None,
        record_grant: bool = True,
    ) -> tuple[Document, DocumentVersion]:
        """The document and version if ``identity`` may read it; every attempt is recorded.

        Actions that change the document pass ``record_grant=False``: reading is only
        their first check (role and label follow), so they record their one decision
        themselves once it is final, and only a refusal here is recorded here.

        Unknown ids and documents the person does not dominate give the same 404.
        Reading without a version means the newest version the person may read:
        a newer version above their clearance is neither shown nor betrayed.
        Actions that change the document always act on its current version.
        """
        if not well_formed_id(document_id):
            await self.recorder.record(
                identity, action=action, outcome="denied", reason="malformed_id", source=source
            )
            raise NotFound(NOT_FOUND_MESSAGE)
        document, row = await document_and_version(document_id, version)
        if version is None and action in READ_ACTIONS and document is not None and row is not None:
            row = await self._newest_readable(identity, row)
        label = row.label if row is not None else (document.label if document else "")
        decision = self.pdp.may_read(identity, label) if document is not None else None
        granted = decision is not None and decision.granted and row is not None
        reason = "granted" if granted else ("not_found" if decision is None else decision.reason)
        if decision is not None and decision.granted and row is None:
            reason = "no_such_version"
        step_up = granted and row is not None and self.needs_step_up(identity, action, row.label)
        if step_up:
            granted, reason = False, "step_up_required"
        if granted and not record_grant:
            assert document is not None
            assert row is not None
            return document, row
        await self.recorder.record(
            identity,
            action=action,
            outcome="granted" if granted else "denied",
            reason=reason,
            source=source,
            document_id=document_id,
            version=version if version is not None else (row.version if row else None),
        )
        if step_up:
            raise StepUpRequired(STEP_UP_MESSAGE)
        if not granted or document is None or row is None:
            raise NotFound(NOT_FOUND_MESSAGE)
        return document, row

    def needs_step_up(self, identity: Identity, action: str, label: str) -> bool:
        """True when ``action`` on content labelled ``label`` needs a strong sign-in first."""
        if action not in CONTENT_ACTIONS or identity.strong or not self.step_up_levels:
            return False
        return self.pdp.parse(label).level in self.step_up_levels

    async def _newest_readable(
        self, identity: Identity, current: DocumentVersion
    ) -> DocumentVersion:
        """``current`` if ``identity`` may read it, else the newest older version they may."""
        if self.pdp.may_read(identity, current.label).granted:
            return current
        older = DocumentVersion.filter(
            document_id=current.document_id, version__lt=current.version
        ).order_by("-version")
        found = newest_readable(self.pdp, identity, await older)
        return found or current  # none: the current one, denied as before

    async def require_role(
        self, identity: Identity, rule: RoleRule, *, action: str, source: str, document_id: str
    ) -> None:
        """Refuse (and record the refusal of) a person without the role ``rule`` needs,
        before the document is looked up: the answer is then the same for every id, so
        it says nothing of whether the document exists or its current version is hidden."""
        if rule.allows(identity):
            return
        await self.recorder.record(
            identity,
            action=action,
            outcome="denied",
            reason="role",
            source=source,
            document_id=document_id if well_formed_id(document_id) else None,
        )
        rule.require(identity)

    async def decide_change(
        self,
        identity: Identity,
        document: Document,
        *,
        action: str,
        source: str,
        granted: bool,
        reason: str,
        version: int | None = None,
    ) -> None:
        """Record the one decision of an action that changes a readable document."""
        await self.recorder.record(
            identity,
            action=action,
            outcome="granted" if granted else "denied",
            reason=reason if not granted else "granted",
            source=source,
            document_id=document.id,
            version=version if version is not None else document.current_version,
        )
