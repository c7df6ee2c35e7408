"""The one policy decision point: every path that shows a document asks here."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.identity import Identity
from gateway.config import Settings
from gateway.errors import Forbidden
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
from gateway.policy.scheme import node_scheme

PARSED_LABELS_KEPT = 4096  # distinct label texts remembered (labels are few; parsing is not free)
READ_ROLES = frozenset({"reader", "officer", "admin"})
UPLOAD_ROLES = frozenset({"uploader", "admin"})
OFFICER_ROLES = frozenset({"officer", "admin"})


@dataclass(frozen=True)
class RoleRule:
    """The roles one action needs, and the refusal that names that action's role."""

    roles: frozenset[str]
    refusal: str

    def allows(self, identity: Identity) -> bool:
        """Whether ``identity`` is a person holding one of the roles."""
        return identity.is_person and bool(identity.roles & self.roles)

    def require(self, identity: Identity) -> None:
        """Forbidden (with this action's own message) unless :meth:`allows`."""
        if not self.allows(identity):
            raise Forbidden(self.refusal)


UPLOADING = RoleRule(UPLOAD_ROLES, "uploading needs the uploader role")
DOWNGRADING = RoleRule(OFFICER_ROLES, "downgrading needs the officer role")
DESTROYING = RoleRule(OFFICER_ROLES, "destroying a document needs the officer role")


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
            identity.nationality,  # "" for none: in no REL TO list (labels.dominates)
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

    def may_apply(self, identity: Identity, label: Label, rule: RoleRule = UPLOADING) -> Decision:
        """Whether ``identity`` may label a document so in an action governed by ``rule``.

        Never above their own clearance; the role is the one the action needs
        (uploading a version, or an officer's downgrade), not always the uploader's.
        """
        if not rule.allows(identity):
            return Decision(False, "role")
        return label_within_clearance(label, self.clearance_of(identity), self.scheme)


def decision_point(settings: Settings) -> PolicyDecisionPoint:
    """The node's decision point, on its configured level scheme (the one place it is built)."""
    return PolicyDecisionPoint(node_scheme(settings))
