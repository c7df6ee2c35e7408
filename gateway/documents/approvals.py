"""The two-person rule's requests: stored, ledgered, claimed once, expired.

A downgrade or destruction of a document labelled at or above a configured
level is not carried out at once: :class:`ApprovalBook` stores a request and
ledgers ``approval.requested``; a second officer's approval or refusal, or the
end of the window, settles it, each ledgered once (a status changes from
``pending`` by one conditional UPDATE, so two workers or two officers racing
settle it once). What is done on approval is in ``changes.py``.

Who may see or decide a request is :class:`ApprovalDesk`'s, the one way the API and
the portal reach a request: the officer role, the request's existence and the
caller's clearance for its document come first, each refusal recorded, and a request
the caller may not read is answered as an id that does not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tortoise.exceptions import IntegrityError

from gateway.auth.identity import Identity
from gateway.config import Settings
from gateway.db.transaction import transaction
from gateway.documents.access import AccessRecorder
from gateway.documents.context import DocumentContext, well_formed_id
from gateway.documents.envelope import label_digest
from gateway.documents.models import ApprovalRequest as ApprovalRequest  # public type
from gateway.documents.models import Document
from gateway.errors import ConfigError, Conflict, NotFound
from gateway.ledger.entries import make_entry, utc_timestamp
from gateway.ledger.queued import EntryRecorder
from gateway.ledger.transactional import Claim, Together, queue_entry
from gateway.policy.labels import Label, LabelError, LevelScheme, format_label
from gateway.policy.pdp import DESTROYING, DOWNGRADING, UPLOADING, RoleRule

if TYPE_CHECKING:  # catalogue.py and changes.py import this module
    from gateway.documents.catalogue import DocumentCatalogue
    from gateway.documents.changes import Decided, DocumentChanges

log = logging.getLogger("sekisho.approvals")
Clock = Callable[[], datetime]


class GatedLedger(EntryRecorder, Protocol):
    """A ledger that says whether entries may be written now (fail closed)."""

    def ensure_open(self) -> None:
        """Raise unless entries may be written now."""
        ...


ACTIONS = frozenset({"downgrade", "destroy"})
NO_SUCH_REQUEST = "no such approval request"
UPGRADE_ACTOR = "init"  # who closes the duplicates an earlier release let through


class RequestSettled(Conflict):
    """The request was settled meanwhile (by another officer, worker or the clock)."""

    code = "approval_settled"

    def __init__(self, status: str = "") -> None:
        told = f" (it is {status})" if status else ""
        super().__init__(f"this request is no longer pending{told}")


class ApprovalPending(Conflict):
    """A request for this document and action is already waiting for approval."""

    code = "approval_pending"

    def __init__(self, action: str) -> None:
        super().__init__(f"a {action} request for this document is already waiting for approval")


def utc_now() -> datetime:
    """The wall clock, in UTC (tests inject another)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class TwoPersonRule:
    """Which labels need a second officer, and for how long a request waits."""

    scheme: LevelScheme
    lowest_rank: int | None  # None: the rule is off
    window: timedelta

    def applies(self, label: Label) -> bool:
        """True when downgrading or destroying a document under ``label`` needs approval."""
        if self.lowest_rank is None:
            return False
        return self.scheme.rank(label.level) >= self.lowest_rank


def two_person_rule(scheme: LevelScheme, levels: tuple[str, ...], seconds: int) -> TwoPersonRule:
    """The rule from ``documents.two_person_levels``: the lowest level named and above."""
    ranks = []
    for level in levels:
        try:
            ranks.append(scheme.rank(scheme.canonical_level(level)))
        except LabelError:
            raise ConfigError(
                f"setting documents.two_person_levels: {level!r} is not a level of this node "
                f"({', '.join(scheme.levels)})"
            ) from None
    return TwoPersonRule(scheme, min(ranks) if ranks else None, timedelta(seconds=seconds))


def request_view(row: ApprovalRequest, *, title: str | None = None) -> dict[str, Any]:
    """The JSON view of a request (the reason is shown to officers cleared for the document)."""
    return {
        "id": row.id,
        "document": row.document_id,
        "title": title,
        "version": row.version,
        "action": row.action,
        "new_label": row.new_label or None,
        "reason": row.reason,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "status": row.status,
        "decided_by": row.decided_by or None,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
    }


class ApprovalBook:
    """Stores and settles two-person requests; every change is ledgered and in the trail."""

    def __init__(
        self, ledger: GatedLedger, recorder: AccessRecorder, clock: Clock = utc_now
    ) -> None:
        self._ledger = ledger
        self._recorder = recorder
        self.clock = clock

    async def claim(
        self,
        identity: Identity,
        *,
        document_id: str,
        version: int,
        action: str,
        new_label: Label | None,
        reason: str,
        window: timedelta,
    ) -> ApprovalRequest | None:
        """Store a pending request, or None when one for the document and action is waiting.

        The insert is the check: a partial unique index (one pending request per
        document and action, gateway/db/upgrade.py) lets one of two racing requests in.
        Nothing is ledgered yet: :meth:`announce` does it (or :meth:`withdraw` undoes
        the claim).
        """
        assert action in ACTIONS
        now = self.clock()
        row = ApprovalRequest(
            id=str(uuid.uuid4()),
            document_id=document_id,
            version=version,
            action=action,
            new_label=_label_text(new_label),
            reason=reason,
            requested_by=identity.actor,
            requested_at=now,
            expires_at=now + window,
        )
        try:
            await row.save(force_create=True)
        except IntegrityError:
            return None
        return row

    async def announce(self, row: ApprovalRequest, new_label: Label | None) -> None:
        """Ledger ``approval.requested`` for a claimed row; if the ledger cannot take it
        the claim is withdrawn and the error raised (no entry, no request)."""
        try:
            await self._ledger.record(
                "approval.requested",
                request=row.id,
                document=row.document_id,
                version=row.version,
                action=row.action,
                actor=row.requested_by,
                new_label=label_digest(new_label) if new_label is not None else None,
                reason_sha256=hashlib.sha256(row.reason.encode()).hexdigest()
                if row.reason
                else None,
                expires=utc_timestamp(row.expires_at),
            )
        except BaseException:
            await self.withdraw(row)
            raise

    async def withdraw(self, row: ApprovalRequest) -> None:
        """Remove a claimed request that was never ledgered."""
        await ApprovalRequest.filter(id=row.id, status="pending").delete()

    async def get(self, request_id: str) -> ApprovalRequest:
        """A request by id (404 when unknown); an overdue pending one is expired first."""
        try:
            uuid.UUID(request_id)
        except ValueError:
            raise NotFound(NO_SUCH_REQUEST) from None
        row = await ApprovalRequest.get_or_none(id=request_id)
        if row is None:
            raise NotFound(NO_SUCH_REQUEST)
        if row.status == "pending" and row.expires_at <= self.clock():
            await self._expire(row)
            await row.refresh_from_db()
        return row

    async def pending(self) -> list[ApprovalRequest]:
        """Every pending request, oldest first, after expiring the overdue ones."""
        await self.expire_overdue()
        return await ApprovalRequest.filter(status="pending").order_by("requested_at")

    async def pending_by_others(self, exclude_actor: str) -> list[ApprovalRequest]:
        """Pending, unexpired requests made by someone else (read only: nothing is ledgered)."""
        rows = ApprovalRequest.filter(status="pending", expires_at__gt=self.clock())
        return await rows.exclude(requested_by=exclude_actor)

    async def open_request(self, document_id: str, action: str) -> ApprovalRequest | None:
        """The pending, unexpired request for this document and action, if any."""
        await self.expire_overdue()
        return await ApprovalRequest.filter(
            document_id=document_id, action=action, status="pending"
        ).first()

    async def settle(self, row: ApprovalRequest, identity: Identity, status: str) -> bool:
        """Move a pending request to ``approved``/``refused``/``stale``; False if already settled.

        The conditional UPDATE and the queued entry are one database transaction:
        of two officers or workers racing, one wins, and a decision is stored
        exactly when its entry is (if the entry cannot be queued, the request stays
        pending and the error is raised). Undoing the UPDATE after a failed ledger
        write instead could collide with a newer request stored in between
        (the one-pending index) and leave a decision without its entry.
        """
        decision = self.settling(row, identity, status)
        try:
            async with transaction():
                await decision.write_first(self._ledger)  # fails closed if rolled back
        except RequestSettled:
            return False
        self.settled(row, identity, status)
        return True

    def settling(self, row: ApprovalRequest, identity: Identity, status: str) -> Together:
        """A decision as writes for the transaction of its effect (an approval is
        stored only with the change it approves): the claim of the pending request
        (``RequestSettled`` if it is pending no more) and its entry. Call
        :meth:`settled` once that transaction committed."""
        entry_type = "approval.granted" if status == "approved" else "approval.refused"
        fields: dict[str, Any] = {
            "request": row.id,
            "document": row.document_id,
            "version": row.version,
            "action": row.action,
            "actor": identity.actor,
        }
        if status != "approved":
            fields["reason_code"] = status
        query = ApprovalRequest.filter(id=row.id, status="pending").update(
            status=status, decided_by=identity.actor, decided_at=self.clock()
        )
        entry = make_entry(entry_type, self._ledger.node, **fields)
        return Together(Claim(query, RequestSettled()), first=[entry])

    @staticmethod
    def settled(row: ApprovalRequest, identity: Identity, status: str) -> None:
        """Show a committed decision on the row in hand."""
        row.status, row.decided_by = status, identity.actor

    async def expire_overdue(self) -> int:
        """Expire every overdue pending request (ledgered, in the trail); how many."""
        overdue = await ApprovalRequest.filter(status="pending", expires_at__lte=self.clock())
        count = 0
        for row in overdue:
            count += await self._expire(row)
        return count

    async def _expire(self, row: ApprovalRequest) -> int:
        async with transaction():  # the expiry and its entry together, as in settle()
            changed = await ApprovalRequest.filter(id=row.id, status="pending").update(
                status="expired", decided_at=self.clock()
            )
            if not changed:
                return 0  # another worker or request expired it first
            await queue_entry(
                self._ledger,
                "approval.expired",
                request=row.id,
                document=row.document_id,
                version=row.version,
                action=row.action,
            )
        await self._recorder.record_actor(
            row.requested_by,
            action=f"expire_{row.action}",
            outcome="denied",
            reason="expired",
            source="node",
            document_id=row.document_id,
            version=row.version,
        )
        return 1


async def close_duplicates(ledger: EntryRecorder, clock: Clock = utc_now) -> int:
    """Close as ``stale`` every pending request but the oldest of its document and action.

    An earlier release could store two at once, and the unique index that now
    prevents it cannot be built over them. The oldest stays pending (it was listed
    first and expires first); each one closed is ledgered as ``approval.refused``
    with reason ``duplicate``. How many were closed.
    """
    rows = await ApprovalRequest.filter(status="pending").order_by("requested_at", "id")
    seen: set[tuple[str, str]] = set()
    closed = 0
    for row in rows:
        if (row.document_id, row.action) not in seen:
            seen.add((row.document_id, row.action))
            continue
        if await ApprovalRequest.filter(id=row.id, status="pending").update(
            status="stale", decided_by=UPGRADE_ACTOR, decided_at=clock()
        ):
            await ledger.record(
                "approval.refused",
                request=row.id,
                document=row.document_id,
                version=row.version,
                action=row.action,
                actor=UPGRADE_ACTOR,
                reason_code="duplicate",
            )
            closed += 1
    return closed


def _label_text(label: Label | None) -> str:
    return format_label(label) if label is not None else ""


def expiry_interval(settings: Settings) -> timedelta:
    """How often the sweep runs: a tenth of the window, between 1 second and a minute."""
    return timedelta(seconds=min(60.0, max(1.0, settings.documents.two_person_window / 10)))


async def run_expiry_sweep(book: ApprovalBook, every: timedelta) -> None:
    """Expire overdue requests periodically (reads expire them lazily too)."""
    while True:
        await asyncio.sleep(every.total_seconds())
        try:
            expired = await book.expire_overdue()
        except Exception as exc:  # the next round tries again; reads expire lazily meanwhile
            log.warning("approval expiry sweep failed: %s", exc)
            continue
        if expired:
            log.info("expired %d two-person approval request(s)", expired)


DECIDING = RoleRule(
    DOWNGRADING.roles & DESTROYING.roles,  # what deciding either kind of request needs
    "two-person requests are seen and decided by officers: this needs the officer role",
)
"""The role checked before a request is looked up (its action is not known yet, so the
refusal must not name it)."""

VIEW = "approval"
"""The trail's action for viewing one request. Approving and refusing record ``approve``
and ``refuse`` when refused by the desk, ``approve_<action>`` and ``refuse_<action>``
(``changes.py``) once the request is found readable."""

LIST = "approvals"
"""The trail's action for listing the pending requests (one entry a list, as the document
list's ``list``: refused by role, or granted with the number shown)."""

CHANGE_RULES: dict[str, RoleRule] = {
    "upload": UPLOADING,
    "new_version": UPLOADING,
    "downgrade": DOWNGRADING,
    "destroy": DESTROYING,
    "approve": DECIDING,
    "refuse": DECIDING,
    VIEW: DECIDING,
    LIST: DECIDING,
}
"""The role each action that changes a document or decides a request needs, by the
trail's action name: every path (API, portal page, its form) refuses and records a
person without it before the document or the request is looked up (an upload has no
document: its post is refused and recorded by the writer, the portal's form by this)."""


class ApprovalDesk:
    """Viewing, approving and refusing two-person requests, behind one gate.

    What is known of a request (that it exists, its action, its status, whether it is
    settled or overdue) is its document's to hide. So, in this order, each refusal
    recorded as one ``document.accessed`` entry and one trail row (as
    ``DocumentContext.find_readable`` records a read's):

    1. the officer role (:data:`DECIDING`), before the request is looked up: one 403
       for every id, recorded under the plain verb with no document (the list of
       pending requests passes the same check, :data:`LIST`);
    2. that the request exists: a malformed or unknown id is a 404 ``no such approval
       request``, recorded (``malformed_id`` or ``not_found``, no document);
    3. that the caller may read the request's document (its current version): if not,
       exactly that 404, recorded with the document and, for officers, the reason.

    Only then does anything depend on the request itself (``DocumentChanges``): its
    status (409 once settled), the lazy expiry of an overdue one (a ledgered change),
    the requester's own request.
    """

    def __init__(self, catalogue: DocumentCatalogue) -> None:
        self._ctx: DocumentContext = catalogue.context
        self.changes: DocumentChanges = catalogue.changes

    async def require_officer(self, identity: Identity, *, action: str, source: str) -> None:
        """Refuse (and record) a person without the officer role, whatever the request id."""
        await self._ctx.require_role(
            identity, CHANGE_RULES[action], action=action, source=source, document_id=""
        )

    async def readable(
        self,
        identity: Identity,
        request_id: str,
        *,
        action: str,
        source: str,
        record_grant: bool = False,
    ) -> ApprovalRequest:
        """The request, if ``identity`` is an officer who may read its document; otherwise
        the refusal is recorded and the 404 of an unknown id raised. Nothing here reads or
        changes the request's status. A grant is recorded only when ``record_grant``
        (a decision records its own once its own checks are done)."""
        await self.require_officer(identity, action=action, source=source)
        well_formed = well_formed_id(request_id)  # ids are stored as written: lower-case
        row = await ApprovalRequest.get_or_none(id=request_id) if well_formed else None
        if row is None:
            await self._ctx.recorder.record(
                identity,
                action=action,
                outcome="denied",
                reason="not_found" if well_formed else "malformed_id",
                source=source,
            )
            raise NotFound(NO_SUCH_REQUEST)
        try:
            await self._ctx.find_readable(
                identity, row.document_id, action=action, source=source, record_grant=record_grant
            )
        except NotFound:
            raise NotFound(NO_SUCH_REQUEST) from None  # not the document's "no such document"
        return row

    async def visible(
        self, identity: Identity, *, source: str, record: bool = True
    ) -> list[tuple[ApprovalRequest, Document]]:
        """Pending requests on documents the officer is cleared for (the others are left
        out, as if they did not exist). One decision, one entry: a person without the
        officer role is refused (recorded) as for one request; a list shown is recorded as
        granted with how many it shows, unless ``record`` is False (a list shown again
        under a decision that recorded its own entry: the officer role was checked and
        recorded there)."""
        await self.require_officer(identity, action=LIST, source=source)
        found = await self.changes.visible(identity)
        if record:
            await self._ctx.recorder.record(
                identity,
                action=LIST,
                outcome="granted",
                reason=f"results_{len(found)}",
                source=source,
            )
        return found

    async def waiting_for(self, identity: Identity) -> int:
        """How many pending requests by others this officer could decide (nothing written)."""
        return await self.changes.waiting_for(identity)

    async def one(
        self, identity: Identity, request_id: str, *, source: str
    ) -> tuple[ApprovalRequest, Document]:
        """One request and its document (the view is recorded, granted or refused)."""
        await self.readable(identity, request_id, action=VIEW, source=source, record_grant=True)
        return await self.changes.one(identity, request_id)

    async def approve(self, identity: Identity, request_id: str, *, source: str) -> Decided:
        """Approve and carry out a request the officer may read."""
        await self.readable(identity, request_id, action="approve", source=source)
        return await self.changes.approve(identity, request_id, source=source)

    async def refuse(self, identity: Identity, request_id: str, *, source: str) -> ApprovalRequest:
        """Refuse a request the officer may read."""
        await self.readable(identity, request_id, action="refuse", source=source)
        return await self.changes.refuse(identity, request_id, source=source)
