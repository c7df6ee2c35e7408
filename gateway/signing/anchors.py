"""Record anchoring: custody chains of ``record.anchored`` ledger entries.

A chain belongs to a client, its owner: the chain of a subject is the owner's
own, and two clients anchoring the same subject keep two chains. The owner and
the clients it lists as chain writers (``clients set OWNER --chain-writers``)
may read and extend its chains; to anyone else a chain or record answers the
same 404 as one that does not exist. Record ids are public (ledger entries name
them), so knowing an id or a subject grants nothing.

Each anchored record is a link in its owner's chain of its subject. Its ledger entry names
the subject only by SHA-256, the record's digest, the SHA-256 of its metadata
in canonical JSON, its sequence number in the chain and the leaf hash of the
previous link's entry, so the chain can be checked from the ledger alone
while the subject and metadata stay off the (witnessed) log.

The link row and the queued ledger entry are written in one transaction, and
(owner, subject, sequence) is unique, so two writers can never fork a chain: the
loser retries on the new head.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.queryset import QuerySet

from gateway.auth.identity import Identity
from gateway.auth.principals import ApiClient
from gateway.custody.alerts import announce, new_alert
from gateway.custody.guard import CustodyRefused, decide, parse_time
from gateway.custody.models import CustodyAlert
from gateway.custody.store import rules_stamp, rules_stamp_on_sqlite
from gateway.db.one_hop import insert_of, run_all
from gateway.db.sqlite_engine import TurnTakingSqliteClient, one_hop_writer
from gateway.db.transaction import transaction
from gateway.errors import Conflict, NotFound, Unavailable
from gateway.http.models import validate_body
from gateway.ledger.commitments import decode_opening, expand
from gateway.ledger.entries import canonical_json, make_entry, opening_of, utc_timestamp
from gateway.ledger.service import LedgerService, Ticket
from gateway.ledger.store import queue_on_sqlite
from gateway.signing.clients import CLIENT_NAME
from gateway.signing.models import AnchorRecord
from gateway.signing.requests import MAX_SUBJECT, AnchorRequest, InputError
from gateway.tlog.merkle import leaf_hash

_RETRIES = 8
_LOCK_STRIPES = 64
_HEAD_SEQUENCE = (
    "SELECT COALESCE(MAX(sequence), 0) FROM anchor_record WHERE owner = ? AND subject_sha256 = ?"
)


@dataclass(frozen=True)
class NewAnchor:
    """A checked anchoring request."""

    subject: str
    kind: str
    hash_name: str
    digest: bytes
    metadata: Mapping[str, Any]
    owner: str | None = None  # whose chain: the caller's own when None

    @property
    def subject_sha256(self) -> str:
        """Hex SHA-256 of the subject (UTF-8): how ledger entries name it."""
        return subject_digest(self.subject)

    @property
    def metadata_sha256(self) -> str:
        """Hex SHA-256 of the metadata in canonical JSON."""
        return hashlib.sha256(canonical_json(self.metadata)).hexdigest()


@dataclass(frozen=True)
class Link:
    """One link of a custody chain, with its ledger index and receipt once integrated."""

    record: AnchorRecord
    index: int | None
    receipt: str | None
    opening: bytes | None = None  # of the link's ledger entry: the chain's parties may see it


def subject_digest(subject: str) -> str:
    """Hex SHA-256 of a subject."""
    return hashlib.sha256(subject.encode("utf-8")).hexdigest()


def check_subject(value: Any) -> str:
    """1-256 characters, no control characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SUBJECT or not value.isprintable():
        raise InputError(
            f"'subject' must be 1-{MAX_SUBJECT} printable characters", code="bad_subject"
        )
    return value


def check_owner(value: Any) -> str | None:
    """A chain owner: a client name, or None (absent) for the caller's own chains."""
    if value is None:
        return None
    if not isinstance(value, str) or not CLIENT_NAME.fullmatch(value):
        raise InputError("'owner' must be an API client name", code="bad_owner")
    return value


def anchor_request(body: Any) -> NewAnchor:
    """``{subject, kind, digest, hash?, metadata?, owner?}`` checked by :class:`AnchorRequest`."""
    new = validate_body(AnchorRequest, body, InputError)
    return NewAnchor(
        new.subject, new.kind, new.hash or "sha256", new.digest, new.metadata, new.owner
    )


async def may_use_chains(caller: Identity, owner: str) -> bool:
    """Whether ``caller`` may read and extend ``owner``'s custody chains."""
    if caller.kind != "client":
        return False
    if caller.name == owner:
        return True
    row = await ApiClient.get_or_none(name=owner)
    return row is not None and caller.name in row.chain_writers


@dataclass
class _NewLink:
    """A link decided but not yet written: its row, its entry, and its alert if any."""

    row: AnchorRecord
    entry: bytes
    alert: tuple[CustodyAlert, bytes] | None

    @property
    def entries(self) -> list[bytes]:
        """The entries to queue, the link's first."""
        return [self.entry] if self.alert is None else [self.entry, self.alert[1]]

    @property
    def rows(self) -> list[Model]:
        """The rows to write with them, the link's first."""
        return [self.row] if self.alert is None else [self.row, self.alert[0]]

    def announce(self) -> None:
        """Log the alert, if any, once everything is written."""
        if self.alert is not None:
            announce(self.alert[0])


def _chain(owner: str, subject_sha256: str) -> QuerySet[AnchorRecord]:
    """A subject's links, newest first."""
    return AnchorRecord.filter(owner=owner, subject_sha256=subject_sha256).order_by("-sequence")


class _Refusal(Exception):
    """Carries a refusal out of the link's transaction (so it rolls back)."""

    def __init__(self, error: CustodyRefused, sequence: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.sequence = sequence


def _no_chain() -> NotFound:
    return NotFound("no such chain", code="no_such_chain")


def _no_record() -> NotFound:
    return NotFound("no such anchored record", code="no_such_record")


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HandoverProof:
    """A two-party hand-over whose signatures verified: what its link commits to."""

    id: uuid.UUID
    sha256: str
    giver: str
    receiver: str


def link_view(link: Link) -> dict[str, Any]:
    """A chain link as the API shows it; ``entry`` is the exact ledger entry text."""
    row = link.record
    return {
        "record": str(row.id),
        "owner": row.owner,
        "subject": row.subject,
        "subject_sha256": row.subject_sha256,
        "sequence": row.sequence,
        "kind": row.kind,
        "hash": row.hash,
        "digest": base64.b64encode(bytes.fromhex(row.digest)).decode(),
        "metadata": row.metadata,
        "metadata_sha256": row.metadata_sha256,
        "client": row.client,
        "created_at": row.created_at.isoformat(),
        "previous": row.previous,
        "rule": row.rule,
        "rule_version": row.rule_version,
        "handover": None if row.handover is None else str(row.handover),
        "entry": bytes(row.entry).decode("utf-8"),
        # the entry's fields are commitments; this opens them for the chain's parties
        "opening": None
        if link.opening is None
        else expand("record.anchored", decode_opening(link.opening)),
        "leaf_hash": row.leaf_hash,
        "index": link.index,
        "receipt": link.receipt,
    }


class AnchorService:
    """Appends custody-chain links and reads chains back with receipts, for those allowed.

    Each new link is checked against its subject's custody rule (gateway/custody) in the
    transaction that writes it; ``clock`` gives the link's time (tests inject one).
    """

    def __init__(self, ledger: LedgerService, clock: Clock = _now) -> None:
        self._ledger = ledger
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]
        self.clock = clock

    @property
    def ledger(self) -> LedgerService:
        """The node's ledger."""
        return self._ledger

    async def anchor(
        self, caller: Identity, new: NewAnchor, handover: HandoverProof | None = None
    ) -> AnchorRecord:
        """Append a link to the owner's chain of the subject; its entry is queued on return.

        Another client's chain only for its chain writers; to anyone else 404. A link
        its custody rule refuses raises CustodyRefused (409) after ledgering the refusal.
        """
        owner = new.owner or caller.name
        if not await may_use_chains(caller, owner):
            raise _no_chain()
        subject = new.subject_sha256
        stripe = hashlib.sha256(f"{owner}\n{subject}".encode()).digest()
        lock = self._locks[stripe[0] % _LOCK_STRIPES]
        async with lock:  # one writer per chain in this process; the database decides between
            for _ in range(_RETRIES):
                try:
                    return await self._append(caller, owner, new, handover)
                except IntegrityError:
                    continue  # another process extended the chain first
                except _Refusal as refusal:
                    await self._refused(caller, owner, new, refusal)
                    raise refusal.error from None
        raise Conflict("the chain of this subject is busy; retry", code="chain_busy")

    async def _append(
        self, caller: Identity, owner: str, new: NewAnchor, handover: HandoverProof | None
    ) -> AnchorRecord:
        self._ledger.ensure_open()  # queued in the link's own transaction: ask the gate
        at = parse_time(utc_timestamp(self.clock()))  # exactly the entry's ts
        writer = one_hop_writer(connections.get("default"))
        if writer is not None:
            return await self._append_at_once(writer, caller, owner, new, handover, at)
        async with transaction():
            head = await _chain(owner, new.subject_sha256).select_for_update().first()
            link = await self._new_link(caller, owner, new, handover, head, at)
            link.row.queue_id = (await self._ledger.store.enqueue(link.entries))[0]
            for row in link.rows:
                await row.save(force_create=True)
        link.announce()
        return link.row

    async def _append_at_once(
        self,
        writer: TurnTakingSqliteClient,
        caller: Identity,
        owner: str,
        new: NewAnchor,
        handover: HandoverProof | None,
        at: datetime,
    ) -> AnchorRecord:
        """:meth:`_append` on SQLite in one hop: the head and the rules are read and the
        link decided first; the write checks that neither changed meanwhile (else
        IntegrityError: the caller retries on the new head) and queues the entry and
        writes the row in one transaction on the database thread."""
        rules = await rules_stamp()
        head = await _chain(owner, new.subject_sha256).first()
        link = await self._new_link(caller, owner, new, handover, head, at)
        expected = head.sequence if head else 0
        inserts = [insert_of(row) for row in link.rows]

        def write(db: sqlite3.Connection) -> None:
            current = db.execute(_HEAD_SEQUENCE, (owner, new.subject_sha256)).fetchone()[0]
            if current != expected or rules_stamp_on_sqlite(db) != rules:
                raise IntegrityError("the chain or its custody rules changed meanwhile")
            link.row.queue_id = queue_on_sqlite(link.entries, db)[0]
            run_all(inserts, db)

        try:
            await writer.write_at_once(write)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from None
        link.announce()
        return link.row

    async def _new_link(
        self,
        caller: Identity,
        owner: str,
        new: NewAnchor,
        handover: HandoverProof | None,
        head: AnchorRecord | None,
        at: datetime,
    ) -> _NewLink:
        """The link after ``head`` (not yet written), once its custody rule allows it."""
        sequence = head.sequence + 1 if head else 1
        decision = await decide(
            subject=new.subject,
            kind=new.kind,
            metadata=new.metadata,
            party=f"client:{caller.name}",
            head=head,
            at=at,
            handover=(handover.giver, handover.receiver) if handover else None,
        )
        if decision.refused:
            assert decision.rule is not None
            raise _Refusal(CustodyRefused(decision.rule, decision.verdict), sequence)
        previous = head.leaf_hash if head else None
        rule = decision.rule
        record_id = uuid.uuid4()
        entry = make_entry(
            "record.anchored",
            self._ledger.node,
            at=at,
            client=caller.name,
            owner=owner,
            subject_sha256=new.subject_sha256,
            kind=new.kind,
            digest=f"{new.hash_name}:{new.digest.hex()}",
            metadata_sha256=new.metadata_sha256,
            record=str(record_id),
            sequence=sequence,
            previous=previous,
            rule=rule.name if rule else None,
            rule_version=rule.version if rule else None,
            handover_sha256=handover.sha256 if handover else None,
        )
        row = AnchorRecord(
            id=record_id,
            owner=owner,
            subject=new.subject,
            subject_sha256=new.subject_sha256,
            sequence=sequence,
            kind=new.kind,
            hash=new.hash_name,
            digest=new.digest.hex(),
            metadata=dict(new.metadata),
            metadata_sha256=new.metadata_sha256,
            client=caller.name,
            entry=entry,
            leaf_hash=leaf_hash(entry).hex(),
            previous=previous,
            queue_id=0,
            rule=rule.name if rule else None,
            rule_version=rule.version if rule else None,
            handover=handover.id if handover else None,
        )
        alert = None
        if rule is not None and not decision.verdict.ok:  # record-and-alert
            alert = new_alert(self._ledger, row, rule.name, decision.verdict, at=at)
        return _NewLink(row, entry, alert)

    async def _refused(
        self, caller: Identity, owner: str, new: NewAnchor, refusal: _Refusal
    ) -> None:
        """Ledger a refused anchor (nothing else is written)."""
        rule, verdict = refusal.error.rule, refusal.error.verdict
        await self._ledger.record(
            "custody.refused",
            client=caller.name,
            owner=owner,
            subject_sha256=new.subject_sha256,
            kind=new.kind,
            digest=f"{new.hash_name}:{new.digest.hex()}",
            rule=rule.name,
            rule_version=rule.version,
            sequence=refusal.sequence,
            code=verdict.code,
        )

    async def new_link(self, record: AnchorRecord) -> Link:
        """A just-made link, without waiting for its integration."""
        return Link(record, None, None, await self._opening(record))

    async def wait(self, record: AnchorRecord, seconds: float) -> Link:
        """The link once its entry is integrated (``index`` None if not within ``seconds``)."""
        opening = await self._opening(record)
        try:
            index = await self._ledger.integrated(Ticket(record.queue_id), wait_seconds=seconds)
        except Unavailable:  # not integrated in time: answer without a receipt
            return Link(record, None, None, opening)
        await AnchorRecord.filter(id=record.id).update(ledger_index=index)
        record.ledger_index = index
        receipt = await self._ledger.receipt(index)
        return Link(record, index, receipt, opening)

    async def _opening(self, record: AnchorRecord) -> bytes | None:
        """The opening of a link's entry: carried by a link this process just wrote,
        else read from the store."""
        carried = opening_of(record.entry)
        if carried is not None:
            return carried
        return (await self._openings([record])).get(record.leaf_hash)

    async def get(self, caller: Identity, record_id: str) -> Link:
        """One link by its record id, if ``caller`` may read its chain (404 otherwise)."""
        try:
            parsed = uuid.UUID(record_id)
        except ValueError:
            raise _no_record() from None
        row = await AnchorRecord.get_or_none(id=parsed)
        if row is None or not await may_use_chains(caller, row.owner):
            raise _no_record()
        return (await self._links([row]))[0]

    async def chain(
        self, caller: Identity, subject: str, *, owner: str | None, after: int, limit: int
    ) -> list[Link]:
        """The owner's links of the subject with sequence > ``after``, in chain order."""
        owner = owner or caller.name
        if not await may_use_chains(caller, owner):
            raise _no_chain()
        rows = (
            await AnchorRecord.filter(
                owner=owner, subject_sha256=subject_digest(subject), sequence__gt=after
            )
            .order_by("sequence")
            .limit(limit)
        )
        return await self._links(rows)

    async def whole_chain(self, owner: str, subject_sha256: str) -> list[Link]:
        """Every link of the owner's chain of a subject, in order, with no access check
        (for callers that checked access themselves: chain parties, officers)."""
        rows = await AnchorRecord.filter(owner=owner, subject_sha256=subject_sha256).order_by(
            "sequence"
        )
        return await self._links(rows)

    async def _links(self, rows: Sequence[AnchorRecord]) -> list[Link]:
        unknown = [r.queue_id for r in rows if r.ledger_index is None]
        found = await self._ledger.store.indexes_for_queue_ids(unknown) if unknown else {}
        openings = await self._openings(rows)
        links: list[Link] = []
        for row in rows:
            if row.ledger_index is None and row.queue_id in found:
                row.ledger_index = found[row.queue_id]
                await AnchorRecord.filter(id=row.id).update(ledger_index=row.ledger_index)
            receipt = await self._receipt(row.ledger_index)
            links.append(Link(row, row.ledger_index, receipt, openings.get(row.leaf_hash)))
        return links

    async def _openings(self, rows: Sequence[AnchorRecord]) -> dict[str, bytes]:
        """The stored openings of the rows' entries, by hex leaf hash."""
        found = await self._ledger.store.openings(
            [bytes.fromhex(r.leaf_hash) for r in rows],
            queued=[r.queue_id for r in rows if r.ledger_index is None],
        )
        return {digest.hex(): opening for digest, opening in found.items()}

    async def _receipt(self, index: int | None) -> str | None:
        if index is None:
            return None
        try:
            return await self._ledger.receipt(index)
        except NotFound:  # integrated but not yet under a checkpoint
            return None
