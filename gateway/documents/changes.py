"""Downgrade and destruction, under the two-person rule where it applies.

The API and the portal both call :class:`DocumentChanges` (through the
catalogue), so the checks are the same on every path: the person must be able
to read the document, hold the officer role and, for a downgrade, give a reason
and a lower label. At or above the levels of ``documents.two_person_levels``
the action becomes a stored request (``approvals.py``) that runs only when
another officer, cleared for the document, approves it within the window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.auth.identity import Identity
from gateway.db.transaction import transaction
from gateway.documents.approvals import (
    NO_SUCH_REQUEST,
    ApprovalBook,
    ApprovalPending,
    RequestSettled,
    TwoPersonRule,
)
from gateway.documents.context import DocumentContext, well_formed_id
from gateway.documents.envelope import label_digest
from gateway.documents.models import ApprovalRequest, Document, DocumentVersion
from gateway.documents.reader import DocumentReader, Gone
from gateway.documents.writer import DocumentWriter, NewVersion
from gateway.errors import BadRequest, Conflict, Forbidden, NotFound
from gateway.ledger.entries import make_entry
from gateway.ledger.transactional import Together, queue_entries
from gateway.policy.labels import Label, LabelError, format_label, is_downgrade
from gateway.policy.pdp import DESTROYING, DOWNGRADING, RoleRule

MAX_REASON = 1000
RULES: dict[str, RoleRule] = {"downgrade": DOWNGRADING, "destroy": DESTROYING}


class OwnRequest(Forbidden):
    """The requester tried to approve (or refuse) their own request."""

    code = "own_request"


@dataclass(frozen=True)
class Decided:
    """What an approval did: the new version of a downgrade, or the versions destroyed."""

    request: ApprovalRequest
    new_version: DocumentVersion | None = None
    destroyed: int = 0


class DocumentChanges:
    """Downgrade, destroy, and the approval or refusal of a two-person request."""

    def __init__(
        self,
        context: DocumentContext,
        reader: DocumentReader,
        writer: DocumentWriter,
        rule: TwoPersonRule,
        book: ApprovalBook,
    ) -> None:
        self._ctx = context
        self._reader = reader
        self._writer = writer
        self.rule = rule
        self.book = book

    async def _needs_approval(self, document_id: str, *, every_version: bool = False) -> bool:
        """Whether the rule covers the document: its current label, or for a destruction
        (which shreds them all) the label of any version not yet destroyed."""
        if self.rule.lowest_rank is None or not well_formed_id(document_id):
            return False
        document = await Document.get_or_none(id=document_id)
        if document is None:
            return False
        labels = [document.label]
        if every_version:
            rows = DocumentVersion.filter(document_id=document_id, destroyed_at__isnull=True)
            labels += [str(text) for text in await rows.values_list("label", flat=True)]
        try:
            return any(self.rule.applies(self._ctx.pdp.parse(str(text))) for text in labels)
        except LabelError:
            return True  # a label this node cannot read: ask a second officer

    async def downgrade(
        self, identity: Identity, document_id: str, new_label_text: str, reason: str, *, source: str
    ) -> DocumentVersion | ApprovalRequest:
        """Re-encrypt the current version under a lower label, or ask a second officer.

        One decision, one trail row: the role's refusal first (before the document is
        looked up, so it is the same for every id), then reading (its refusal is
        recorded there), and the grant by the writer (or, for a two-person request,
        here before the request is stored).
        """
        reason = check_reason(reason)
        await self._ctx.require_role(
            identity, DOWNGRADING, action="downgrade", source=source, document_id=document_id
        )
        new = self._ctx.pdp.parse(new_label_text)  # a bad label is refused for every id alike
        document, row = await self._readable_for_change(identity, document_id, "downgrade", source)
        old = self._ctx.pdp.parse(row.label)
        if not is_downgrade(old, new, self._ctx.pdp.scheme) or format_label(new) == format_label(
            old
        ):
            raise BadRequest(
                "the new label must be lower than the current one", code="not_a_downgrade"
            )
        if self.rule.applies(old):
            return await self._request(
                identity, document, row, "downgrade", new, reason, source=source
            )
        return await self._downgrade(identity, document, row, new, reason, source=source)

    async def _readable_for_change(
        self, identity: Identity, document_id: str, action: str, source: str
    ) -> tuple[Document, DocumentVersion]:
        """The document and its current version, if readable; a refusal is recorded under
        the plain action name: whether the two-person rule covers a document is asked
        only once the person may see it, so a refusal never tells its level."""
        return await self._ctx.find_readable(
            identity, document_id, action=action, source=source, record_grant=False
        )

    async def title_confirms(self, identity: Identity, document_id: str, typed: str) -> bool:
        """``typed`` is the document's title and the person may read it (a typed
        confirmation of destruction; the title of a hidden document confirms nothing)."""
        document = await Document.get_or_none(id=document_id) if len(document_id) <= 36 else None
        if document is None or typed != document.title:
            return False
        return self._ctx.pdp.may_read(identity, document.label).granted

    async def destroy(
        self, identity: Identity, document_id: str, *, source: str
    ) -> int | ApprovalRequest:
        """Crypto-shred every version (the count), or ask a second officer."""
        await self._ctx.require_role(
            identity, DESTROYING, action="destroy", source=source, document_id=document_id
        )
        document, row = await self._readable_for_change(identity, document_id, "destroy", source)
        if await self._needs_approval(document_id, every_version=True):
            return await self._request(identity, document, row, "destroy", None, "", source=source)
        await self._ctx.decide_change(
            identity, document, action="destroy", source=source, granted=True, reason="granted"
        )
        return await self._destroy(identity, document)

    async def _request(
        self,
        identity: Identity,
        document: Document,
        row: DocumentVersion,
        action: str,
        new_label: Label | None,
        reason: str,
        *,
        source: str,
    ) -> ApprovalRequest:
        claimed = None
        if await self.book.open_request(document.id, action) is None:  # expires overdue ones
            claimed = await self.book.claim(
                identity,
                document_id=document.id,
                version=row.version,
                action=action,
                new_label=new_label,
                reason=reason,
                window=self.rule.window,
            )
        if claimed is None:  # known already, or stored by a request racing this one
            await self._ctx.decide_change(
                identity,
                document,
                action=f"request_{action}",
                source=source,
                granted=False,
                reason="approval_pending",
            )
            raise ApprovalPending(action)
        try:
            await self._ctx.decide_change(
                identity,
                document,
                action=f"request_{action}",
                source=source,
                granted=True,
                reason="",
            )
        except BaseException:
            await self.book.withdraw(claimed)
            raise
        await self.book.announce(claimed, new_label)
        return claimed

    async def approve(self, identity: Identity, request_id: str, *, source: str) -> Decided:
        """Carry out a pending request as a second officer cleared for the document.

        One decision, one entry, ``approve_<action>``: the refusals before the request is
        carried out are :meth:`_decidable`'s; a new label the officer may not apply is
        refused (recorded) here, before the approval is ledgered; a downgrade's grant is
        the writer's (with the new version, as a downgrade's own), a destruction's is
        recorded here before the keys are shredded.
        """
        request, document, row = await self._decidable(identity, request_id, "approve", source)
        action = f"approve_{request.action}"
        # the approval is stored in the transaction of the change it approves, or not at all
        if request.action == "downgrade":
            new = self._ctx.pdp.parse(request.new_label)
            decision = self._ctx.pdp.may_apply(identity, new, DOWNGRADING)
            if not decision.granted:
                await self._ctx.decide_change(
                    identity,
                    document,
                    action=action,
                    source=source,
                    granted=False,
                    reason=decision.reason,
                )
                raise Forbidden(
                    "you cannot approve this downgrade: the new label is outside your own "
                    f"clearance ({decision.reason}); another officer must decide it"
                )
            version = await self._downgrade(
                identity,
                document,
                row,
                new,
                request.reason,
                source=source,
                action=action,
                approval=lambda: self.book.settling(request, identity, "approved"),
            )
            self.book.settled(request, identity, "approved")
            return Decided(request, new_version=version)
        await self._ctx.decide_change(
            identity, document, action=action, source=source, granted=True, reason="granted"
        )
        destroyed = await self._destroy(
            identity, document, approval=self.book.settling(request, identity, "approved")
        )
        self.book.settled(request, identity, "approved")
        return Decided(request, destroyed=destroyed)

    async def refuse(self, identity: Identity, request_id: str, *, source: str) -> ApprovalRequest:
        """Refuse a pending request as a second officer cleared for the document (one
        entry, ``refuse_<action>``: granted here, or :meth:`_decidable`'s refusal)."""
        request, document, _ = await self._decidable(identity, request_id, "refuse", source)
        await self._ctx.decide_change(
            identity,
            document,
            action=f"refuse_{request.action}",
            source=source,
            granted=True,
            reason="granted",
        )
        if not await self.book.settle(request, identity, "refused"):
            raise RequestSettled()
        return request

    async def visible(self, identity: Identity) -> list[tuple[ApprovalRequest, Document]]:
        """Pending requests on documents an officer is cleared for, with their documents."""
        DOWNGRADING.require(identity)
        return await self._readable(identity, await self.book.pending())

    async def waiting_for(self, identity: Identity) -> int:
        """How many pending requests by others this officer could decide (nothing written)."""
        if not DOWNGRADING.allows(identity):
            return 0
        return len(
            await self._readable(identity, await self.book.pending_by_others(identity.actor))
        )

    async def one(self, identity: Identity, request_id: str) -> tuple[ApprovalRequest, Document]:
        """One request, for an officer cleared for its document (404 otherwise)."""
        DOWNGRADING.require(identity)
        found = await self._readable(identity, [await self.book.get(request_id)])
        if not found:
            raise NotFound(NO_SUCH_REQUEST)
        return found[0]

    async def _readable(
        self, identity: Identity, rows: list[ApprovalRequest]
    ) -> list[tuple[ApprovalRequest, Document]]:
        ids = {row.document_id for row in rows}
        documents = {d.id: d for d in await Document.filter(id__in=list(ids))} if ids else {}
        return [
            (row, documents[row.document_id])
            for row in rows
            if row.document_id in documents
            and self._ctx.pdp.may_read(identity, documents[row.document_id].label).granted
        ]

    async def _decidable(
        self, identity: Identity, request_id: str, verb: str, source: str
    ) -> tuple[ApprovalRequest, Document, DocumentVersion]:
        """The request, its document and current version, if ``identity`` may decide it.

        Each refusal here is recorded once under ``<verb>_<action>`` (own request, settled,
        stale, the document not readable); a way through records nothing: the decision
        records its one entry once its own checks are done.
        """
        request = await self.book.get(request_id)
        action = f"{verb}_{request.action}"
        await self._ctx.require_role(  # the desk checked it first: a guard, recorded alike
            identity, RULES[request.action], action=action, source=source, document_id=""
        )
        if request.requested_by == identity.actor:
            await self._refused(identity, request, action, source, reason="own_request")
            raise OwnRequest("the two-person rule needs another officer: you made this request")
        if request.status != "pending":
            await self._refused(identity, request, action, source, reason="settled")
            raise RequestSettled(request.status)
        current = await Document.get_or_none(id=request.document_id)
        document, row = await self._ctx.find_readable(
            identity, request.document_id, action=action, source=source, record_grant=False
        )
        if current is None or current.current_version != request.version or document.destroyed:
            await self._refused(identity, request, action, source, reason="stale")
            if await self.book.settle(request, identity, "stale"):
                raise Conflict(
                    "the document has changed since this request was made; it was closed, "
                    "ask again if still needed",
                    code="approval_stale",
                )
            raise RequestSettled()
        return request, document, row

    async def _refused(
        self, identity: Identity, request: ApprovalRequest, action: str, source: str, *, reason: str
    ) -> None:
        """Record the refusal of a decision on a request the officer may read."""
        await self._ctx.recorder.record(
            identity,
            action=action,
            outcome="denied",
            reason=reason,
            source=source,
            document_id=request.document_id,
            version=request.version,
        )

    async def _downgrade(
        self,
        identity: Identity,
        document: Document,
        row: DocumentVersion,
        new: Label,
        reason: str,
        *,
        source: str,
        action: str = "downgrade",
        approval: Callable[[], Together] | None = None,
    ) -> DocumentVersion:
        """The new version under ``new``; its ``document.relabelled`` entry (and the
        ``approval``'s claim and entry) are written in the version's own transaction.
        The writer records the one decision under ``action`` (``approve_downgrade`` when
        an approval carries it out)."""
        content = await self._reader.open(identity, document, row, None)
        meta = NewVersion(label=new, filename=row.filename, media_type=row.media_type)
        old_label = label_digest(self._ctx.pdp.parse(row.label))

        def together(version: int) -> Together:
            relabelled = make_entry(
                "document.relabelled",
                self._ctx.ledger.node,
                document=document.id,
                version=version,
                actor=identity.actor,
                old_label=old_label,
                new_label=label_digest(new),
                reason_sha256=hashlib.sha256(reason.encode()).hexdigest(),
            )
            mine = Together(then=[relabelled])
            return mine if approval is None else approval().joined(mine)

        return await self._writer.add_version(
            identity,
            document,
            meta,
            content.body,
            rule=DOWNGRADING,
            action=action,
            source=source,
            together=together,
        )

    async def _destroy(
        self, identity: Identity, document: Document, *, approval: Together | None = None
    ) -> int:
        """Shred every version's key in one transaction with its ``document.destroyed``
        entry (and the ``approval``'s claim and entry); the count.

        The document is marked destroyed first, in the same transaction, so a new
        version written at once either lands before (and is shredded here) or is
        refused (its advance needs a document not destroyed); of two destructions at
        once one shreds and records, the other is told the document is gone.
        """
        now = datetime.now(UTC)
        async with transaction():
            if approval is not None:
                await approval.write_first(self._ctx.ledger)
            if not await Document.filter(id=document.id, destroyed=False).update(destroyed=True):
                raise Gone("this document was destroyed")
            # after the document's row is locked: a version added meanwhile is seen here
            rows = await DocumentVersion.filter(document_id=document.id, destroyed_at__isnull=True)
            shredded = [
                make_entry(
                    "document.destroyed",
                    self._ctx.ledger.node,
                    document=document.id,
                    version=row.version,
                    actor=identity.actor,
                    reason_code="crypto_shred",
                )
                for row in rows
            ]
            if shredded:
                await queue_entries(self._ctx.ledger, shredded)
                await DocumentVersion.filter(id__in=[row.id for row in rows]).update(
                    wrapped_key=None, destroyed_at=now
                )
        self._ctx.ledger.nudge()
        for row in rows:
            if row.wrapped_key is not None:
                self._ctx.data_keys.pop((row.kek_label, bytes(row.wrapped_key)))
            await self._ctx.blobs.delete(row.blob_key)
        return len(rows)


def check_reason(reason: str) -> str:
    """A downgrade's reason, stripped: 1..MAX_REASON characters."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise BadRequest(
            f"a downgrade needs a reason (1..{MAX_REASON} characters)", code="missing_reason"
        )
    return reason
