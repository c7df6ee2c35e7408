"""Build the custody services of a node and run the periodic overdue check."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.custody.alerts import check_overdue
from gateway.custody.handovers import HandoverService
from gateway.custody.models import CustodyHandover
from gateway.custody.store import RuleVersion, latest_rules, rule_versions
from gateway.ledger.service import LedgerService
from gateway.signing.wiring import SigningApi

log = logging.getLogger("sekisho.custody")


@dataclass(frozen=True)
class CustodyApi:
    """What the custody routes and pages use."""

    handovers: HandoverService
    ledger: LedgerService

    async def latest_rules(self) -> list[RuleVersion]:
        """The newest version of every rule."""
        return await latest_rules()

    async def rule_versions(self, name: str) -> list[RuleVersion]:
        """Every version of one rule, oldest first (NotFound if it has none)."""
        return await rule_versions(name)

    async def pending_handovers(self, party: str) -> list[CustodyHandover]:
        """Pending hand-overs naming ``party`` as giver or receiver, oldest first."""
        rows = await CustodyHandover.filter(status="pending").order_by("created_at")
        return [row for row in rows if party in (row.giver, row.receiver)]


def build_custody(signing: SigningApi, ledger: LedgerService) -> CustodyApi:
    """Hand-overs on the node's anchoring and signing services."""
    return CustodyApi(HandoverService(signing.anchors, signing.signing), ledger)


async def overdue_loop(ledger: LedgerService, seconds: float) -> None:
    """Look for overdue custody steps every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await check_overdue(ledger, datetime.now(UTC))
        except Exception as exc:  # keep checking; the next round retries
            log.warning("custody overdue check failed: %s", exc)
