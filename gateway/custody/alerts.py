"""Custody alerts: a link accepted out of rule ("record-and-alert") and overdue steps.

Each alert is a ``custody_alert`` row (at most one per link and code) and an
``alert.raised`` ledger entry queued in the same transaction. The overdue check
is periodic (the server runs it every ``custody.check_seconds``) and takes the
time as an input, so tests drive it with their own clock.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.exceptions import IntegrityError

from gateway.custody.evaluate import Verdict, overdue
from gateway.custody.guard import step_of
from gateway.custody.models import CustodyAlert
from gateway.custody.store import latest_rules
from gateway.db.transaction import transaction
from gateway.ledger.entries import make_entry
from gateway.ledger.store import TortoiseLedgerStore
from gateway.ledger.transactional import NodeLedger
from gateway.signing.models import AnchorRecord

log = logging.getLogger("sekisho.custody")
OVERDUE = "overdue"


async def raise_alert(
    ledger: NodeLedger, row: AnchorRecord, rule: str, verdict: Verdict, *, at: datetime
) -> CustodyAlert:
    """Record one alert for a link: its row and its entry (call inside ``transaction()``)."""
    ledger.ensure_open()  # queued in the caller's transaction, not appended: ask the gate
    alert, entry = new_alert(ledger, row, rule, verdict, at=at)
    await alert.save(force_create=True)
    await TortoiseLedgerStore().enqueue([entry])
    announce(alert)
    return alert


def new_alert(
    ledger: NodeLedger, row: AnchorRecord, rule: str, verdict: Verdict, *, at: datetime
) -> tuple[CustodyAlert, bytes]:
    """The alert row and its ``alert.raised`` entry for a link, neither written yet."""
    alert = CustodyAlert(
        record=row.id,
        owner=row.owner,
        subject_sha256=row.subject_sha256,
        rule=rule,
        code=verdict.code,
        message=verdict.message[:512],
    )
    entry = make_entry(
        "alert.raised",
        ledger.node,
        at=at,
        alert="custody.overdue" if verdict.code == OVERDUE else "custody.out_of_rule",
        detail_code=verdict.code,
        record=str(row.id),
        subject_sha256=row.subject_sha256,
        rule=rule,
        source="custody",
    )
    return alert, entry


def announce(alert: CustodyAlert) -> None:
    """Log an alert once it is written."""
    log.warning("custody alert %s on record %s (rule %s)", alert.code, alert.record, alert.rule)


async def _heads() -> list[AnchorRecord]:
    """The last link of every chain under a custody rule."""
    rows = await AnchorRecord.filter(rule__isnull=False).order_by(
        "owner", "subject_sha256", "-sequence"
    )
    heads: dict[tuple[str, str], AnchorRecord] = {}
    for row in rows:
        heads.setdefault((row.owner, row.subject_sha256), row)
    return list(heads.values())


async def check_overdue(ledger: NodeLedger, now: datetime) -> list[CustodyAlert]:
    """Raise an alert (once) for every chain whose head outstayed its state at ``now``."""
    rules = {version.name: version for version in await latest_rules()}
    raised = []
    for head in await _heads():
        rule = rules.get(head.rule or "")
        if rule is None:
            continue
        late = overdue(rule.rule, step_of(head), now)
        if late is None:
            continue
        if await CustodyAlert.exists(record=head.id, code=OVERDUE):
            continue
        state = head.metadata.get("state")
        verdict = Verdict(OVERDUE, f"{state} has outstayed its limit by {late}")
        try:
            async with transaction():
                raised.append(await raise_alert(ledger, head, rule.name, verdict, at=now))
        except IntegrityError:  # another process raised it first
            continue
    return raised
