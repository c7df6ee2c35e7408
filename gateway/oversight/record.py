"""Ledgering what officers and administrators look at: one ``oversight.viewed`` per view,
and its row in the oversight log (``oversight_event``) that officers page through.

Filters can hold free text (a username, a document id). Each value is kept as is when
it is a short printable ASCII string, else replaced by ``sha256:`` and the first 32 hex
digits of its UTF-8 digest, so the entry always passes the ledger's value checks and
stays bounded while an auditor can still match a value they know.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from gateway.auth.identity import Identity
from gateway.errors import LedgerRolledBack, Unavailable
from gateway.ledger.entries import utc_timestamp
from gateway.ledger.service import LedgerService
from gateway.oversight.models import OversightEvent
from gateway.trail.query import TrailQuery

MAX_FILTER_CHARS = 64
MAX_FILTERS = 16


log = logging.getLogger("sekisho.oversight")


def canonical_filter_value(value: object) -> str:
    """A filter value as a short printable ASCII string (digested when it is not one)."""
    text = utc_timestamp(value) if isinstance(value, datetime) else str(value)
    if text.isascii() and text.isprintable() and len(text) <= MAX_FILTER_CHARS:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def canonical_filters(filters: Mapping[str, object]) -> dict[str, str]:
    """The filters that were set, with canonical names and values, at most MAX_FILTERS."""
    chosen = sorted((str(k), v) for k, v in filters.items() if v not in (None, ""))
    return {
        canonical_filter_value(name): canonical_filter_value(value)
        for name, value in chosen[:MAX_FILTERS]
    }


async def record_view(
    ledger: LedgerService, identity: Identity, view: str, filters: Mapping[str, object]
) -> None:
    """Ledger that ``identity`` looked at ``view`` with ``filters`` (fails closed).

    One exception: while the ledger is halted by a rollback or fork alarm, the
    alerts view is shown without its entry (logged instead), because that view is
    where officers learn of the alarm; the ledger that would record the visit is
    the thing in doubt. Every other view fails closed as before.
    """
    kept = canonical_filters(filters)
    try:
        ticket = await ledger.record(
            "oversight.viewed", actor=identity.actor, view=view, filters=kept
        )
    except LedgerRolledBack:
        if view != "alerts":
            raise
        log.error("ledger halted: %s viewed the alerts; not ledgered", identity.actor)
        return
    try:
        await OversightEvent.create(
            at=datetime.now(UTC),
            actor=identity.actor,
            view=view,
            filters=kept,
            node=ledger.node,
            ledger_queue_id=ticket.queue_id,
            ledger_index=ticket.index,
        )
    except Exception as exc:  # the entry is kept; the view fails closed like the entry would
        log.error("oversight log row for %s (%s) not written: %s", identity.actor, view, exc)
        raise Unavailable("the oversight log cannot be written right now") from None


def trail_filters(query: TrailQuery) -> dict[str, object]:
    """The filters of a trail query, as an oversight entry records them."""
    return {
        "actor": query.actor,
        "document": query.document,
        "outcome": query.outcome,
        "action": query.action,
        "start": query.start,
        "end": query.end,
        "node": query.node,
        "format": query.format,
        "limit": query.limit if query.limit_given else None,
    }
