"""A subject's custody chain as officers and chain parties see it, and as exported.

The export (``sekisho.custody.export/v1``) holds everything an offline verifier
needs: every link with its exact ledger entry, opening and receipt; every rule
version the links were checked by, with its ``custody.rule_changed`` entry,
opening and receipt; and each hand-over's signed document, signatures and the
signing keys' certificates. ``sekisho custody verify`` re-checks it with no
access to the node (gateway/custody/offline.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.custody.evaluate import overdue
from gateway.custody.guard import entry_time, state_of, step_of
from gateway.custody.handovers import signed_document
from gateway.custody.models import CustodyAlert, CustodyHandover, CustodyRule
from gateway.custody.store import RuleVersion, rule_for, rule_version
from gateway.errors import NotFound
from gateway.ledger.commitments import decode_opening, expand
from gateway.ledger.service import LedgerService
from gateway.signing.anchors import AnchorService, Link, link_view, subject_digest

FORMAT = "sekisho.custody.export/v1"


@dataclass(frozen=True)
class ChainView:
    """A chain with its rule, state, holder, pending hand-overs and alerts."""

    owner: str
    subject: str
    links: list[Link]
    rule: dict[str, Any] | None
    state: str | None
    holder: str | None
    overdue: str | None
    pending: list[CustodyHandover]
    alerts: list[CustodyAlert]


def _holder(link: Link) -> str:
    """Who holds the item after a link: the receiver of a hand-over, else its writer."""
    metadata = link.record.metadata
    holder = metadata.get("holder") if isinstance(metadata, dict) else None
    return holder if isinstance(holder, str) else f"client:{link.record.client}"


async def chain_view(anchors: AnchorService, owner: str, subject: str, now: datetime) -> ChainView:
    """The owner's chain of ``subject`` (404 when it has no link and no hand-over)."""
    digest = subject_digest(subject)
    links = await anchors.whole_chain(owner, digest)
    pending = await CustodyHandover.filter(
        owner=owner, subject_sha256=digest, status__in=["pending", "anchoring"]
    ).order_by("created_at")
    if not links and not pending:
        raise NotFound("no such chain", code="no_such_chain")
    alerts = await CustodyAlert.filter(owner=owner, subject_sha256=digest).order_by("created_at")
    head = links[-1].record if links else None
    rule = await rule_for(subject, head.kind if head else "", head.rule if head else None)
    holder = None
    if head is not None:
        holder = _holder(links[-1])
        if head.handover is not None:
            handover = await CustodyHandover.get_or_none(id=head.handover)
            holder = handover.receiver if handover else holder
    late = overdue(rule.rule, step_of(head), now) if rule and head else None
    return ChainView(
        owner=owner,
        subject=subject,
        links=links,
        rule=None
        if rule is None
        else {"name": rule.name, "version": rule.version, "document": rule.row.document},
        state=state_of(head.metadata) if head else None,
        holder=holder,
        overdue=None if late is None else str(late),
        pending=list(pending),
        alerts=list(alerts),
    )


def rule_view(version: RuleVersion) -> dict[str, Any]:
    """One stored rule version as the API and the CLI show it."""
    row = version.row
    return {
        "name": row.name,
        "version": row.version,
        "sha256": row.sha256,
        "document": row.document,
        "actor": row.actor,
        "created_at": row.created_at.isoformat(),
    }


def handover_view(row: CustodyHandover) -> dict[str, Any]:
    """A hand-over as the API and exports show it."""
    return {
        "handover": str(row.id),
        "owner": row.owner,
        "subject": row.subject,
        "status": row.status,
        "giver": row.giver,
        "receiver": row.receiver,
        "document": signed_document(row),
        "sha256": row.sha256,
        "signatures": {
            role: value
            for role, value in (
                ("giver", row.giver_signature),
                ("receiver", row.receiver_signature),
            )
            if value is not None
        },
        "record": None if row.record is None else str(row.record),
        "created_at": row.created_at.isoformat(),
    }


def alert_view(row: CustodyAlert) -> dict[str, Any]:
    """A custody alert as pages and exports show it."""
    return {
        "record": str(row.record),
        "rule": row.rule,
        "code": row.code,
        "message": row.message,
        "raised_at": row.created_at.isoformat(),
    }


async def _rule_export(ledger: LedgerService, row: CustodyRule) -> dict[str, Any]:
    found = await ledger.store.indexes_for_queue_ids([row.queue_id])
    index = found.get(row.queue_id)
    receipt = None
    if index is not None:
        try:
            receipt = await ledger.receipt(index)
        except NotFound:
            receipt = None
    queued = [] if index is not None else [row.queue_id]
    openings = await ledger.store.openings([bytes.fromhex(row.leaf_hash)], queued=queued)
    opening = openings.get(bytes.fromhex(row.leaf_hash))
    return {
        "name": row.name,
        "version": row.version,
        "document": row.document,
        "sha256": row.sha256,
        "entry": bytes(row.entry).decode("utf-8"),
        "opening": None
        if opening is None
        else expand("custody.rule_changed", decode_opening(opening)),
        "index": index,
        "receipt": receipt,
    }


async def export_chain(ledger: LedgerService, view: ChainView) -> dict[str, Any]:
    """The chain as ``sekisho custody verify`` reads it."""
    used = sorted({(l.record.rule, l.record.rule_version) for l in view.links if l.record.rule})  # noqa: E741
    rules = [await _rule_export(ledger, (await rule_version(n, v)).row) for n, v in used if v]
    ids = [l.record.handover for l in view.links if l.record.handover is not None]  # noqa: E741
    handovers = await CustodyHandover.filter(id__in=ids) if ids else []
    return {
        "format": FORMAT,
        "owner": view.owner,
        "subject": view.subject,
        "links": [link_view(link) for link in view.links],
        "rules": rules,
        "handovers": [handover_view(row) for row in handovers],
        "state": view.state,
        "holder": view.holder,
        "pending_handovers": [handover_view(row) for row in view.pending],
        "alerts": [alert_view(row) for row in view.alerts],
    }


def timeline(view: ChainView) -> list[dict[str, Any]]:
    """Links, hand-overs and alerts in time order, for the officer page and CSV."""
    rows: list[dict[str, Any]] = []
    for link in view.links:
        record = link.record
        rows.append(
            {
                "at": entry_time(record.entry).isoformat(),
                "what": "link",
                "sequence": record.sequence,
                "state": state_of(record.metadata) or "",
                "party": f"client:{record.client}",
                "detail": f"{record.kind} ({record.rule or 'no rule'}"
                f"{f' v{record.rule_version}' if record.rule_version else ''})",
                "record": str(record.id),
            }
        )
    for handover in view.pending:
        rows.append(
            {
                "at": handover.created_at.isoformat(),
                "what": "pending hand-over",
                "sequence": "",
                "state": str(handover.document.get("state", "")),
                "party": f"{handover.giver} -> {handover.receiver}",
                "detail": f"signed by {', '.join(_signers(handover)) or 'nobody yet'}",
                "record": str(handover.id),
            }
        )
    for alert in view.alerts:
        rows.append(
            {
                "at": alert.created_at.isoformat(),
                "what": "alert",
                "sequence": "",
                "state": "",
                "party": "",
                "detail": f"{alert.code}: {alert.message}",
                "record": str(alert.record),
            }
        )
    return sorted(rows, key=lambda row: str(row["at"]))


def _signers(row: CustodyHandover) -> list[str]:
    return [
        str(value.get("party"))
        for value in (row.giver_signature, row.receiver_signature)
        if isinstance(value, dict)
    ]
