"""Alerts for security officers: repeated denials, failed sign-ins, lock-outs, tamper findings.

Denials and sign-ins come from their local tables (``access_event``,
``sign_in_attempt``, ``sign_in_lock``). Tamper findings come from the periodic
auditor's current status and from the ``alert.raised`` entries among the most
recent ledger entries (document integrity failures and ledger audit findings
are written only there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tortoise.functions import Count, Max, Min

from gateway.auth.models import SignInAttempt, SignInLock
from gateway.auth.name_tags import describe
from gateway.documents.models import AccessEvent
from gateway.ledger.audit.auditor import AuditStatus
from gateway.ledger.service import LedgerService

SCAN_ENTRIES = 5000


@dataclass(frozen=True)
class DenialAlert:
    """A person (or client) denied at least ``threshold`` times in the period."""

    actor: str
    count: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class SignInAlert:
    """Failed sign-ins for one account name from one address."""

    username: str
    source: str
    failures: int
    last: datetime


@dataclass(frozen=True)
class LockAlert:
    """A lock-out of an account name or an address."""

    scope: str
    subject: str
    at: datetime
    until: datetime
    failures: int
    active: bool


@dataclass(frozen=True)
class TamperAlert:
    """An ``alert.raised`` ledger entry."""

    index: int
    ts: str
    alert: str
    detail: str
    document: str | None
    version: int | None
    finding_index: int | None


@dataclass
class Alerts:
    """Everything an officer should look at for a period."""

    since: datetime
    denials: list[DenialAlert] = field(default_factory=list)
    sign_ins: list[SignInAlert] = field(default_factory=list)
    locks: list[LockAlert] = field(default_factory=list)
    tamper: list[TamperAlert] = field(default_factory=list)
    audit: AuditStatus | None = None
    rollback: str | None = None
    """Why the ledger is halted as rolled back or forked (none of it is ledgered yet)."""
    scanned_from: int = 0
    scanned_to: int = 0

    @property
    def count(self) -> int:
        """How many alerts in all (an audit finding counts as one)."""
        held = 1 if self.audit is not None and self.audit.finding is not None else 0
        held += 1 if self.rollback is not None else 0
        return len(self.denials) + len(self.sign_ins) + len(self.locks) + len(self.tamper) + held


async def repeated_denials(since: datetime, threshold: int) -> list[DenialAlert]:
    """Actors denied at least ``threshold`` times since ``since``, most denials first."""
    rows = (
        await AccessEvent.filter(outcome="denied", at__gte=since)
        .annotate(count=Count("id"), first=Min("at"), last=Max("at"))
        .group_by("actor")
        .values("actor", "count", "first", "last")
    )
    found = [
        DenialAlert(str(r["actor"]), int(r["count"]), _dt(r["first"]), _dt(r["last"]))
        for r in rows
        if int(r["count"]) >= threshold
    ]
    return sorted(found, key=lambda a: (-a.count, a.actor))


async def failed_sign_ins(since: datetime, threshold: int) -> list[SignInAlert]:
    """Account name and address pairs with at least ``threshold`` failed sign-ins."""
    rows = (
        await SignInAttempt.filter(outcome__in=["denied", "locked"], at__gte=since)
        .annotate(failures=Count("id"), last=Max("at"))
        .group_by("username", "source")
        .values("username", "source", "failures", "last")
    )
    found = [
        SignInAlert(
            describe(str(r["username"])), str(r["source"]), int(r["failures"]), _dt(r["last"])
        )
        for r in rows
        if int(r["failures"]) >= threshold
    ]
    return sorted(found, key=lambda a: (-a.failures, a.username, a.source))


async def lock_outs(since: datetime, now: datetime) -> list[LockAlert]:
    """Lock-outs that began since ``since`` or are still in force, newest first."""
    rows = await SignInLock.filter(until__gt=since).order_by("-at").limit(200)
    return [
        LockAlert(r.scope, describe(r.subject), r.at, r.until, r.failures, r.until > now)
        for r in rows
    ]


async def recent_ledger_alerts(
    ledger: LedgerService, scan: int = SCAN_ENTRIES
) -> tuple[list[TamperAlert], int, int]:
    """``alert.raised`` entries among the last ``scan`` integrated entries, newest first."""
    size = (await ledger.latest()).size
    start = max(0, size - scan)
    found: list[TamperAlert] = []
    position = start
    while position < size:
        end = min(size, position + 1000)
        for offset, entry in enumerate(await ledger.opened_entries(position, end)):
            alert = _alert_entry(position + offset, entry)
            if alert is not None:
                found.append(alert)
        position = end
    return list(reversed(found)), start, size


def _alert_entry(index: int, entry: dict[str, object]) -> TamperAlert | None:
    if entry.get("type") != "alert.raised":
        return None
    return TamperAlert(
        index=index,
        ts=str(entry.get("ts", "")),
        alert=str(entry.get("alert", "")),
        detail=str(entry.get("detail_code", "")),
        document=_optional_str(entry.get("document")),
        version=_optional_int(entry.get("version")),
        finding_index=_optional_int(entry.get("index")),
    )


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dt(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


async def collect(
    ledger: LedgerService,
    audit: AuditStatus | None,
    *,
    since: datetime,
    now: datetime,
    denial_threshold: int = 3,
    sign_in_threshold: int = 3,
) -> Alerts:
    """Every kind of alert for the period since ``since``."""
    tamper, scanned_from, scanned_to = await recent_ledger_alerts(ledger)
    return Alerts(
        since=since,
        denials=await repeated_denials(since, denial_threshold),
        sign_ins=await failed_sign_ins(since, sign_in_threshold),
        locks=await lock_outs(since, now),
        tamper=tamper,
        audit=audit,
        rollback=ledger.rollback,
        scanned_from=scanned_from,
        scanned_to=scanned_to,
    )
