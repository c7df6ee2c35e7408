"""Security-key events in the access trail: one row per registration, removal, sign-in, step-up.

The row carries the queue id of the event's own ledger entry (``auth.*``), so the
trail shows where it landed, and has no document. Failed attempts are not
copied here: they are sign-in attempts (officers' alerts) and ledger entries.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.documents.models import AccessEvent


def queue_id_of(recorded: object) -> int:
    """The ledger queue id a recorder returned (a bare id or a ticket)."""
    if isinstance(recorded, int):
        return recorded
    return int(getattr(recorded, "queue_id", 0))


async def trail_row(
    *, actor: str, action: str, reason: str, source: str, node: str, recorded: object
) -> None:
    """Write one granted trail row for a key event already ledgered as ``recorded``."""
    await AccessEvent.create(
        actor=actor[:128],
        document_id=None,
        version=None,
        action=action,
        outcome="granted",
        reason=reason[:64],
        source=source[:64],
        node=node,
        ledger_queue_id=queue_id_of(recorded),
        ledger_index=getattr(recorded, "index", None),
        at=datetime.now(UTC),
    )
