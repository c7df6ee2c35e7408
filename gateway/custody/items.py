"""Per rule: the items (chains) that are stuck past a state's limit or went out of rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.custody.evaluate import overdue
from gateway.custody.guard import entry_time, state_of, step_of
from gateway.custody.models import CustodyAlert
from gateway.custody.store import rule_versions
from gateway.signing.models import AnchorRecord


async def rule_items(name: str, now: datetime) -> list[dict[str, Any]]:
    """Chains under rule ``name`` whose head is overdue at ``now`` or that have alerts."""
    rule = (await rule_versions(name))[-1].rule
    rows = await AnchorRecord.filter(rule=name).order_by("owner", "subject_sha256", "-sequence")
    heads: dict[tuple[str, str], AnchorRecord] = {}
    for row in rows:
        heads.setdefault((row.owner, row.subject_sha256), row)
    alerts: dict[tuple[str, str], list[str]] = {}
    for alert in await CustodyAlert.filter(rule=name).order_by("created_at"):
        alerts.setdefault((alert.owner, alert.subject_sha256), []).append(alert.code)
    found = []
    for chain, head in heads.items():
        late = overdue(rule, step_of(head), now)
        codes = alerts.get(chain, [])
        if late is None and not codes:
            continue
        found.append(
            {
                "owner": head.owner,
                "subject": head.subject,
                "state": state_of(head.metadata),
                "sequence": head.sequence,
                "since": entry_time(head.entry).isoformat(),
                "overdue": None if late is None else str(late),
                "alerts": codes,
            }
        )
    return found
