"""Pure, deterministic evaluation of custody steps against a rule.

No clock, no I/O: every time is an input (a step's time is its ledger entry's
``ts``), so the server at anchor time and anyone re-verifying an exported chain
offline reach the same verdict from the same rule version and links.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.custody.rules import Rule

# Violations a "record-and-alert" rule cannot accept: a hand-over link exists only
# once both parties have signed it.
ALWAYS_REFUSED = frozenset({"handover_required", "handover_party"})


@dataclass(frozen=True)
class Step:
    """One custody step as the rule sees it."""

    state: str | None  # the link's metadata "state"
    party: str  # who recorded it: "client:NAME" or "person:NAME"
    at: datetime  # the time of its ledger entry
    handover: tuple[str, str] | None = None  # (giver, receiver) whose signatures verified


@dataclass(frozen=True)
class Verdict:
    """The outcome of one step: ``code`` empty when it keeps the rule."""

    code: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the step keeps the rule."""
        return not self.code

    def refused(self, rule: Rule) -> bool:
        """Whether the step must be refused (not merely recorded with an alert)."""
        return not self.ok and (rule.on_violation == "refuse" or self.code in ALWAYS_REFUSED)


OK = Verdict()


def check_step(rule: Rule, previous: Step | None, step: Step) -> Verdict:
    """Whether ``step``, following ``previous`` (None: the first link), keeps ``rule``."""
    if step.state is None:
        return Verdict("missing_state", "the link's metadata has no 'state'")
    if rule.state(step.state) is None:
        return Verdict("unknown_state", f"the rule {rule.name} has no state {step.state!r}")
    from_state = previous.state if previous else None
    transition = rule.transition(from_state, step.state)
    if transition is None:
        where = (
            f"{from_state} -> {step.state}" if from_state else f"a chain starting at {step.state}"
        )
        return Verdict("transition_not_allowed", f"the rule does not allow {where}")
    if previous is not None and previous.state is not None:
        state = rule.state(previous.state)
        limit = state.limit if state else None
        if limit is not None and step.at - previous.at > limit:
            return Verdict(
                "out_of_time",
                f"{step.state} came {_span(step.at - previous.at)} after {previous.state}, "
                f"which allows {state.max_duration if state else ''}",
            )
    if transition.handover is not None:
        if step.handover is None:
            return Verdict(
                "handover_required",
                f"{from_state} -> {step.state} needs a hand-over signed by both parties",
            )
        giver, receiver = step.handover
        if giver not in transition.handover.giver or receiver not in transition.handover.receiver:
            return Verdict(
                "handover_party", f"the rule does not name {giver} -> {receiver} for this hand-over"
            )
        return OK
    if step.party not in transition.by:
        return Verdict("wrong_party", f"the rule does not let {step.party} record {step.state}")
    return OK


def first_break(steps: Sequence[tuple[Rule, Step]]) -> tuple[int, Verdict] | None:
    """The first step (0-based) that breaks its rule, or None when every step keeps it."""
    previous: Step | None = None
    for number, (rule, step) in enumerate(steps):
        verdict = check_step(rule, previous, step)
        if not verdict.ok:
            return number, verdict
        previous = step
    return None


def overdue(rule: Rule, head: Step, now: datetime) -> timedelta | None:
    """How long ``head`` has outstayed its state's limit at ``now`` (None if it has not).

    A state no transition leaves (the end of the chain) is never overdue.
    """
    state = rule.state(head.state) if head.state else None
    if state is None or state.limit is None:
        return None
    if not any(t.from_state == state.name for t in rule.transitions):
        return None
    late = now - head.at - state.limit
    return late if late > timedelta(0) else None


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds}s"
