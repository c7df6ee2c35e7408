"""A person's own view of their trail: refusals about documents look alike.

Officers see the precise reason a read was refused (``level``, ``compartments``,
``releasability``, ``not_found``) and the version; the person refused must not, or
their own history would tell a hidden document from an id that never existed.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.trail.service import TrailEvent

UNIFORM_REASON = "not_found_or_not_permitted"


def as_seen_by_subject(event: TrailEvent) -> TrailEvent:
    """The event as its own actor may see it: a refusal about a document is uniform."""
    if event.outcome == "granted" or event.document_id is None:
        return event
    return replace(event, reason=UNIFORM_REASON, version=None)
