"""Stored, versioned custody rules: each version is a row and a ``custody.rule_changed`` entry.

The row and its queued ledger entry are written in one transaction, so no rule
version exists without its entry. A running server reads rules per anchor, so a
rule added with the CLI applies to the next anchor.
"""

from __future__ import annotations

import fnmatch
import re
import sqlite3
from dataclasses import dataclass

from tortoise import connections

from gateway.custody.models import CustodyRule
from gateway.custody.rules import RULE_NAME, Rule, rule_document, rule_sha256, validate_rule
from gateway.db.transaction import transaction
from gateway.errors import NotFound
from gateway.ledger.entries import make_entry
from gateway.ledger.store import TortoiseLedgerStore
from gateway.ledger.transactional import NodeLedger
from gateway.tlog.merkle import leaf_hash

_RULE_NAME = re.compile(RULE_NAME)


@dataclass(frozen=True)
class RuleVersion:
    """One stored rule version, parsed."""

    row: CustodyRule
    rule: Rule

    @property
    def name(self) -> str:
        """The rule's name."""
        return self.row.name

    @property
    def version(self) -> int:
        """Its version number (1, 2, ...)."""
        return self.row.version


def _parsed(row: CustodyRule) -> RuleVersion:
    return RuleVersion(row, validate_rule(row.document))


async def add_rule(rule: Rule, *, ledger: NodeLedger, actor: str, source: str) -> RuleVersion:
    """Store the next version of ``rule`` (version 1 for a new name) and queue its entry."""
    document = rule_document(rule)
    digest = rule_sha256(document)
    ledger.ensure_open()  # queued in this transaction, not appended: ask the ledger's gate
    async with transaction():
        latest = await CustodyRule.filter(name=rule.name).order_by("-version").first()
        version = latest.version + 1 if latest else 1
        entry = make_entry(
            "custody.rule_changed",
            ledger.node,
            rule=rule.name,
            version=version,
            rule_sha256=digest,
            actor=actor,
            source=source,
        )
        [queue_id] = await TortoiseLedgerStore().enqueue([entry])
        row = await CustodyRule.create(
            name=rule.name,
            version=version,
            document=document,
            sha256=digest,
            actor=actor,
            entry=entry,
            leaf_hash=leaf_hash(entry).hex(),
            queue_id=queue_id,
        )
    return RuleVersion(row, rule)


_RULES_STAMP = "SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last FROM custody_rule"


async def rules_stamp() -> tuple[int, int]:
    """What changes whenever a rule version is added (to check a decision is still current)."""
    [row] = await connections.get("default").execute_query_dict(_RULES_STAMP)
    return int(row["n"]), int(row["last"])


def rules_stamp_on_sqlite(db: sqlite3.Connection) -> tuple[int, int]:
    """:func:`rules_stamp` inside a one-hop SQLite transaction."""
    count, last = db.execute(_RULES_STAMP).fetchone()
    return int(count), int(last)


async def latest_rules() -> list[RuleVersion]:
    """The newest version of every rule, by name."""
    rows = await CustodyRule.all().order_by("name", "-version")
    latest: dict[str, CustodyRule] = {}
    for row in rows:
        latest.setdefault(row.name, row)
    return [_parsed(row) for row in latest.values()]


async def rule_versions(name: str) -> list[RuleVersion]:
    """Every version of one rule, oldest first (404 when there is none).

    A name no rule can have is a 404 before the query: a name longer than the
    column was a ValidationError (a 500) from the ORM, on the API and the portal.
    """
    rows = await CustodyRule.filter(name=name).order_by("version") if _named(name) else []
    if not rows:
        raise NotFound(f"no custody rule named {name!r}", code="no_such_rule")
    return [_parsed(row) for row in rows]


def _named(name: str) -> bool:
    return _RULE_NAME.fullmatch(name) is not None


async def rule_version(name: str, version: int) -> RuleVersion:
    """One version of a rule (404 when missing)."""
    row = await CustodyRule.get_or_none(name=name, version=version) if _named(name) else None
    if row is None:
        raise NotFound(f"no version {version} of custody rule {name!r}", code="no_such_rule")
    return _parsed(row)


def applies(rule: Rule, subject: str, kind: str) -> bool:
    """Whether the rule's match names this subject (glob) or this link kind (glob)."""
    if rule.match.subject is not None:
        return fnmatch.fnmatchcase(subject, rule.match.subject)
    return rule.match.kind is not None and fnmatch.fnmatchcase(kind, rule.match.kind)


async def rule_for(subject: str, kind: str, pinned: str | None) -> RuleVersion | None:
    """The rule for a new link: the chain's own rule (newest version) once it has one,
    otherwise the first rule by name whose match names the subject or the kind."""
    if pinned is not None:
        row = await CustodyRule.filter(name=pinned).order_by("-version").first()
        return _parsed(row) if row else None
    for candidate in await latest_rules():
        if applies(candidate.rule, subject, kind):
            return candidate
    return None
