"""Anchor-time custody checks: which rule a new link falls under and whether it keeps it.

Called by the anchoring service inside the transaction that writes the link,
with the chain head it read there; the evaluation itself is the pure
:mod:`gateway.custody.evaluate` with the link's entry time as its input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.custody.evaluate import OK, Step, Verdict, check_step
from gateway.custody.store import RuleVersion, rule_for
from gateway.errors import Conflict
from gateway.ledger.entries import parse_entry
from gateway.signing.models import AnchorRecord


class CustodyRefused(Conflict):
    """An anchor its custody rule refuses; ``code`` is ``custody_`` and the violation."""

    def __init__(self, rule: RuleVersion, verdict: Verdict) -> None:
        super().__init__(
            f"custody rule {rule.name} v{rule.version} refuses this link: {verdict.message}",
            code=f"custody_{verdict.code}",
        )
        self.rule = rule
        self.verdict = verdict


@dataclass(frozen=True)
class Decision:
    """The rule a new link falls under (None: no rule) and its verdict."""

    rule: RuleVersion | None
    verdict: Verdict = OK

    @property
    def refused(self) -> bool:
        """Whether the link must not be written."""
        return self.rule is not None and self.verdict.refused(self.rule.rule)


def parse_time(ts: str) -> datetime:
    """An entry's RFC 3339 ``ts`` as an aware datetime."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def entry_time(entry: bytes) -> datetime:
    """The time in a ledger entry (its ``ts``, in clear on the leaf)."""
    return parse_time(str(parse_entry(bytes(entry))["ts"]))


def state_of(metadata: Mapping[str, Any]) -> str | None:
    """A link's custody state: its metadata's ``state``, when a string."""
    value = metadata.get("state")
    return value if isinstance(value, str) else None


def step_of(row: AnchorRecord) -> Step:
    """A stored link as the evaluator sees it."""
    return Step(state_of(row.metadata), f"client:{row.client}", entry_time(row.entry))


async def decide(
    *,
    subject: str,
    kind: str,
    metadata: Mapping[str, Any],
    party: str,
    head: AnchorRecord | None,
    at: datetime,
    handover: tuple[str, str] | None = None,
) -> Decision:
    """The rule for a new link after ``head`` at time ``at``, and its verdict."""
    rule = await rule_for(subject, kind, head.rule if head else None)
    if rule is None:
        return Decision(None)
    step = Step(state_of(metadata), party, at, handover)
    previous = step_of(head) if head else None
    return Decision(rule, check_step(rule.rule, previous, step))
