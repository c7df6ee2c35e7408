"""The one policy decision point: every path that shows a document asks here."""

from __future__ import annotations

from gateway.auth.identity import Identity
from gateway.config import Settings
from gateway.policy.labels import (
    Clearance,
    Decision,
    Label,
    LabelError,
    LevelScheme,
    dominates,
    label_within_clearance,
    parse_label,
)

PARSED_LABELS_KEPT = 4096  # distinct label texts remembered (labels are few; parsing is not free)
NO_NATIONALITY = "XXX"  # ICAO's "unspecified": in no REL TO list
READ_ROLES = frozenset({"reader", "officer", "admin"})
UPLOAD_ROLES = frozenset({"uploader", "admin"})


class PolicyDecisionPoint:
    """Decides whether an identity may see or apply a label."""

    def __init__(self, scheme: LevelScheme) -> None:
        self.scheme = scheme
        self._parsed: dict[str, Label] = {}

    def clearance_of(self, identity: Identity) -> Clearance:
        """The clearance a person holds."""
        return Clearance(
            self.scheme.canonical_level(identity.level),
            identity.compartments,
            identity.nationality or NO_NATIONALITY,
        )

    def parse(self, text: str) -> Label:
        """Parse a label in this node's level scheme (LabelError on bad input).

        Labels are immutable and the scheme is fixed for this object, so each
        distinct text is parsed once; a text that fails is parsed again each time.
        """
        label = self._parsed.get(text) if isinstance(text, str) else None
        if label is None:
            label = parse_label(text, self.scheme)
            if len(self._parsed) < PARSED_LABELS_KEPT:
                self._parsed[text] = label
        return label

    def may_read(self, identity: Identity, label_text: str) -> Decision:
        """Whether ``identity`` may know of and read a document with this label."""
        if not identity.is_person:
            return Decision(False, "not_a_person")
        if not identity.roles & READ_ROLES:
            return Decision(False, "role")
        try:
            label = self.parse(label_text)
            return dominates(self.clearance_of(identity), label, self.scheme)
        except LabelError:
            return Decision(False, "label_unreadable")

    def may_apply(self, identity: Identity, label: Label) -> Decision:
        """Whether ``identity`` may label a document so (never above their clearance)."""
        if not identity.is_person or not identity.roles & UPLOAD_ROLES:
            return Decision(False, "role")
        return label_within_clearance(label, self.clearance_of(identity), self.scheme)


def decision_point(settings: Settings) -> PolicyDecisionPoint:
    """The node's decision point, on its configured level scheme (the one place it is built)."""
    return PolicyDecisionPoint(LevelScheme(levels=settings.clearance.levels))
