"""This node's level scheme from its settings: levels, and nations with configured coalitions."""

from __future__ import annotations

from gateway.config import Settings
from gateway.policy.labels import LevelScheme
from gateway.policy.nations import NationCodes


def node_scheme(settings: Settings) -> LevelScheme:
    """The scheme every label and clearance of this node is checked against."""
    clearance = settings.clearance
    nations = NationCodes({c.name: c.members for c in clearance.coalitions})
    return LevelScheme(levels=clearance.levels, nations=nations)
