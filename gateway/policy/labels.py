"""Classification labels, clearances and the dominance checks between them.

Label grammar (ASCII only; parsing is case-insensitive, output is upper case)::

    label        = level [ "//" compartments ] [ "//" rel-to ]
    compartments = compartment *( "/" compartment )
    rel-to       = "REL TO" 1*SP nation *( "," nation )
    level        = one of the scheme's level names, e.g. "TOP SECRET"
    compartment  = 1..32 of A-Z 0-9 "_" "-", starting with a letter or digit
    nation       = an ISO 3166-1 alpha-3 code, or a coalition code of the scheme
                   (NATO, FVEY, ...) that stands for its member nations

Whitespace around every part, compartment and nation is ignored, and runs of
spaces inside a level name count as one. The canonical form sorts compartments
and nations, joins compartments with "/" and nations with ", ", e.g.
``SECRET//ALPHA/BRAVO//REL TO GBR, USA``. Duplicates, empty parts, unknown
levels (and, if the scheme lists them, unknown compartments) are rejected with
``LabelError``. ``releasable_to=None`` means no REL TO restriction; an empty
REL TO list is not a label. Coalitions are expanded when a label is parsed, so
a label names nations only (:mod:`gateway.policy.nations`).

Access rule: a clearance dominates a label when its level ranks at least as
high, it holds every compartment of the label, and, if the label has REL TO,
the holder's nationality is on the list (a holder without a nationality is on
no list).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gateway.policy.errors import LabelError as LabelError
from gateway.policy.nations import NationCodes

DEFAULT_LEVELS = ("UNCLASSIFIED", "CONFIDENTIAL", "SECRET", "TOP SECRET")
MAX_LABEL_LENGTH = 1024
MAX_NAME_LENGTH = 32
MAX_COMPARTMENTS = 64
MAX_NATIONS = 64

REASON_GRANTED = "granted"
REASON_LEVEL = "level"
REASON_COMPARTMENTS = "compartments"
REASON_RELEASABILITY = "releasability"

_LEVEL_RE = re.compile(r"[A-Z0-9]+(?: [A-Z0-9]+)*")
_COMPARTMENT_RE = re.compile(r"[A-Z0-9][A-Z0-9_-]*")
_NATION_RE = re.compile(r"[A-Z]{3}")
_REL_TO_RE = re.compile(r"REL\s+TO(?:\s+|$)")
_ECHO_LENGTH = 40


def _echo(value: object) -> str:
    """Quote a rejected value for an error message, shortened."""
    text = repr(value)
    return text if len(text) <= _ECHO_LENGTH else text[: _ECHO_LENGTH - 3] + "..."


def _fold(text: str) -> str:
    """Upper-case printable ASCII text; reject anything else."""
    if not all(" " <= char <= "~" for char in text):
        raise LabelError(f"label text must be printable ASCII: {_echo(text)}")
    return text.upper()


def _check_length(kind: str, value: str) -> None:
    if not value:
        raise LabelError(f"empty {kind}")
    if len(value) > MAX_NAME_LENGTH:
        raise LabelError(f"{kind} longer than {MAX_NAME_LENGTH} characters: {_echo(value)}")


def _check_compartment(name: str) -> None:
    _check_length("compartment", name)
    if not _COMPARTMENT_RE.fullmatch(name):
        raise LabelError(f"malformed compartment {_echo(name)}")


def _check_nation(code: str) -> None:
    if not _NATION_RE.fullmatch(code):
        raise LabelError(f"nation must be a 3-letter ISO 3166 alpha-3 code: {_echo(code)}")


def _check_level_shape(name: str) -> None:
    _check_length("level", name)
    if not _LEVEL_RE.fullmatch(name):
        raise LabelError(f"malformed level {_echo(name)}")


def _check_names(kind: str, names: object, check: Callable[[str], None]) -> None:
    """Validate a set of names given as a frozenset."""
    if not isinstance(names, frozenset) or not all(isinstance(n, str) for n in names):
        raise LabelError(f"{kind} must be a frozenset of strings")
    for name in names:
        check(name)


@dataclass(frozen=True)
class LevelScheme:
    """An ordered list of classification levels, lowest first.

    ``compartments``, when given, is the closed vocabulary of compartment names;
    ``nations`` the ISO 3166-1 alpha-3 codes and coalitions REL TO may name.
    """

    levels: tuple[str, ...] = DEFAULT_LEVELS
    compartments: frozenset[str] | None = None
    nations: NationCodes = field(default_factory=NationCodes, compare=False, repr=False)
    _ranks: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.levels:
            raise LabelError("a level scheme needs at least one level")
        for name in self.levels:
            _check_level_shape(name)
        if len(set(self.levels)) != len(self.levels):
            raise LabelError("duplicate level in scheme")
        if self.compartments is not None:
            _check_names("compartments", self.compartments, _check_compartment)
        object.__setattr__(self, "_ranks", {n: i for i, n in enumerate(self.levels)})

    def canonical_level(self, name: str) -> str:
        """The canonical (upper-case) spelling of a level name."""
        canonical = " ".join(_fold(name).split())
        if canonical not in self._ranks:
            raise LabelError(f"unknown classification level {_echo(name)}")
        return canonical

    def rank(self, name: str) -> int:
        """Position of a level, 0 being the lowest."""
        return self._ranks[self.canonical_level(name)]

    def check_compartment(self, name: str) -> None:
        """Raise LabelError if the compartment is malformed or not in the vocabulary."""
        _check_compartment(name)
        if self.compartments is not None and name not in self.compartments:
            raise LabelError(f"unknown compartment {_echo(name)}")

    def check_label(self, label: Label) -> None:
        """Raise LabelError unless every part of the label is known to this scheme."""
        self.canonical_level(label.level)
        for name in label.compartments:
            self.check_compartment(name)
        if label.releasable_to is not None:
            self.nations.check_nations(label.releasable_to)

    def bottom(self) -> Label:
        """The lowest label: lowest level, no compartments, no REL TO."""
        return Label(self.levels[0])


DEFAULT_SCHEME = LevelScheme()


@dataclass(frozen=True)
class Label:
    """A classification label; ``releasable_to=None`` means no REL TO restriction."""

    level: str
    compartments: frozenset[str] = frozenset()
    releasable_to: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.level, str):
            raise LabelError("level must be a string")
        _check_level_shape(self.level)
        _check_names("compartments", self.compartments, _check_compartment)
        if len(self.compartments) > MAX_COMPARTMENTS:
            raise LabelError(f"more than {MAX_COMPARTMENTS} compartments")
        if self.releasable_to is not None:
            _check_names("releasable_to", self.releasable_to, _check_nation)
            if not self.releasable_to:
                raise LabelError("REL TO needs at least one nation")
            if len(self.releasable_to) > MAX_NATIONS:
                raise LabelError(f"more than {MAX_NATIONS} nations in REL TO")

    def canonical_bytes(self) -> bytes:
        """Versioned canonical encoding for AEAD associated data (injective, no NUL)."""
        return b"sekisho-label-v1:" + format_label(self).encode("ascii")

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form with sorted lists."""
        rel = None if self.releasable_to is None else sorted(self.releasable_to)
        return {
            "level": self.level,
            "compartments": sorted(self.compartments),
            "releasable_to": rel,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], scheme: LevelScheme) -> Label:
        """Inverse of ``to_dict``; names are case-folded and checked against ``scheme``."""
        if not isinstance(data, Mapping) or set(data) - {"level", "compartments", "releasable_to"}:
            raise LabelError("a label must be an object with level, compartments, releasable_to")
        level = data.get("level")
        if not isinstance(level, str):
            raise LabelError("label level must be a string")
        rel = data.get("releasable_to")
        label = cls(
            scheme.canonical_level(level),
            _name_set("compartments", data.get("compartments", [])),
            None if rel is None else scheme.nations.releasable_to(_name_set("releasable_to", rel)),
        )
        scheme.check_label(label)
        return label


def _name_set(kind: str, value: object) -> frozenset[str]:
    """Turn a JSON list of names into a frozenset, rejecting duplicates."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LabelError(f"{kind} must be a list of strings")
    names = [_fold(v).strip() for v in value]
    if len(set(names)) != len(names):
        raise LabelError(f"duplicate entry in {kind}")
    return frozenset(names)


@dataclass(frozen=True)
class Clearance:
    """What a person may see: a level, compartments held and a nationality."""

    level: str
    compartments: frozenset[str]
    nationality: str

    def __post_init__(self) -> None:
        if not isinstance(self.level, str):
            raise LabelError("level must be a string")
        _check_level_shape(self.level)
        _check_names("compartments", self.compartments, _check_compartment)
        if not isinstance(self.nationality, str):
            raise LabelError("nationality must be a string")
        if self.nationality:  # "" is no nationality: in no REL TO list
            _check_nation(self.nationality)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form with sorted lists."""
        return {
            "level": self.level,
            "compartments": sorted(self.compartments),
            "nationality": self.nationality,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], scheme: LevelScheme) -> Clearance:
        """Inverse of ``to_dict``; names are case-folded and checked against ``scheme``."""
        if not isinstance(data, Mapping) or set(data) - {"level", "compartments", "nationality"}:
            raise LabelError("a clearance must be an object with level, compartments, nationality")
        level, nationality = data.get("level"), data.get("nationality")
        if not isinstance(level, str) or not isinstance(nationality, str):
            raise LabelError("clearance level and nationality must be strings")
        clearance = cls(
            scheme.canonical_level(level),
            _name_set("compartments", data.get("compartments", [])),
            scheme.nations.nationality(_fold(nationality)),
        )
        for name in clearance.compartments:
            scheme.check_compartment(name)
        return clearance


@dataclass(frozen=True)
class Decision:
    """Outcome of a dominance check; ``reason`` names only the failing category."""

    granted: bool
    reason: str


def parse_label(text: str, scheme: LevelScheme) -> Label:
    """Parse a label in the grammar of the module docstring."""
    if not isinstance(text, str):
        raise LabelError("label must be a string")
    if len(text) > MAX_LABEL_LENGTH:
        raise LabelError(f"label longer than {MAX_LABEL_LENGTH} characters")
    parts = [part.strip() for part in _fold(text).split("//")]
    if len(parts) > 3:
        raise LabelError("label has too many '//' parts")
    if not parts[0]:
        raise LabelError("empty level")
    level = scheme.canonical_level(parts[0])
    compartments: frozenset[str] = frozenset()
    releasable_to: frozenset[str] | None = None
    rest = parts[1:]
    if rest and not _REL_TO_RE.match(rest[0]):
        compartments = _split_names("compartment", rest.pop(0), "/")
    if rest:
        releasable_to = scheme.nations.releasable_to(_parse_rel_to(rest.pop(0)))
    if rest:
        raise LabelError("REL TO must be the last part of a label")
    label = Label(level, compartments, releasable_to)
    scheme.check_label(label)
    return label


def _parse_rel_to(part: str) -> frozenset[str]:
    match = _REL_TO_RE.match(part)
    if match is None:
        raise LabelError(f"expected 'REL TO' instead of {_echo(part)}")
    return _split_names("nation", part[match.end() :], ",")


def _split_names(kind: str, part: str, separator: str) -> frozenset[str]:
    """Split a list of names, rejecting empty entries and duplicates."""
    if not part:
        raise LabelError(f"empty {kind} list")
    names = [name.strip() for name in part.split(separator)]
    for name in names:
        if not name:
            raise LabelError(f"empty {kind}")
    if len(set(names)) != len(names):
        raise LabelError(f"duplicate {kind}")
    return frozenset(names)


def format_label(label: Label) -> str:
    """The canonical text of a label."""
    parts = [label.level]
    if label.compartments:
        parts.append("/".join(sorted(label.compartments)))
    if label.releasable_to is not None:
        parts.append("REL TO " + ", ".join(sorted(label.releasable_to)))
    return "//".join(parts)


def dominates(clearance: Clearance, label: Label, scheme: LevelScheme) -> Decision:
    """Whether ``clearance`` may see a document labelled ``label``."""
    if scheme.rank(clearance.level) < scheme.rank(label.level):
        return Decision(False, REASON_LEVEL)
    if not label.compartments <= clearance.compartments:
        return Decision(False, REASON_COMPARTMENTS)
    if label.releasable_to is not None and (
        not clearance.nationality or clearance.nationality not in label.releasable_to
    ):  # a person without a nationality is in no REL TO list
        return Decision(False, REASON_RELEASABILITY)
    return Decision(True, REASON_GRANTED)


def label_within_clearance(label: Label, clearance: Clearance, scheme: LevelScheme) -> Decision:
    """Whether a person holding ``clearance`` may apply ``label`` (never above their own)."""
    return dominates(clearance, label, scheme)


def label_dominates(upper: Label, lower: Label, scheme: LevelScheme) -> bool:
    """Whether ``upper`` is at least as restrictive as ``lower`` in every respect."""
    if scheme.rank(upper.level) < scheme.rank(lower.level):
        return False
    if not lower.compartments <= upper.compartments:
        return False
    if upper.releasable_to is None:
        return lower.releasable_to is None
    return lower.releasable_to is None or upper.releasable_to <= lower.releasable_to


def is_downgrade(old: Label, new: Label, scheme: LevelScheme) -> bool:
    """Whether relabelling ``old`` as ``new`` lets anyone see more.

    True when ``new`` does not dominate ``old``: a lower level, a dropped
    compartment or a wider REL TO, including a sideways swap of compartments.
    """
    return not label_dominates(new, old, scheme)


def highest(labels: Iterable[Label], scheme: LevelScheme) -> Label:
    """Least upper bound: highest level, all compartments, common REL TO nations.

    The bound of no labels is ``scheme.bottom()``. Raises LabelError when the
    REL TO lists share no nation, as such a label could not be shown to anyone.
    """
    result = scheme.bottom()
    for label in labels:
        level = max(result.level, label.level, key=scheme.rank)
        compartments = result.compartments | label.compartments
        rel = _intersect(result.releasable_to, label.releasable_to)
        if rel is not None and not rel:
            raise LabelError("labels have no REL TO nation in common")
        result = Label(scheme.canonical_level(level), compartments, rel)
    return result


def _intersect(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """Intersection where None stands for every nation."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b
