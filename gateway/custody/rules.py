"""The custody rule document: parsed from JSON or TOML and validated with pydantic.

A rule names what it applies to (a subject glob or a link-kind glob), its
ordered states, the allowed transitions (``from`` null is the first link), who
may record each one (``client:NAME`` or ``person:NAME``), how long an item may
stay in a state, which transitions need a two-party hand-over, and what a
violation does: ``refuse`` the anchor, or ``record-and-alert`` (accept it and
ledger an ``alert.raised`` entry).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import BadRequest
from gateway.ledger.entries import canonical_json

RULE_NAME = r"^[a-z][a-z0-9-]{0,63}$"
STATE_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
PARTY = r"^(client|person):[A-Za-z0-9._@-]{1,64}$"
_DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DOCUMENT_BYTES = 64 * 1024

Party = Annotated[str, Field(pattern=PARTY)]
StateName = Annotated[str, Field(pattern=STATE_NAME)]


class RuleError(BadRequest):
    """A rule document that does not parse or validate; the message names the field."""

    code = "bad_rule"


def duration_seconds(text: str) -> int:
    """``30s``, ``90m``, ``48h``, ``7d`` as seconds."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError("a duration is a number and a unit s, m, h or d (e.g. '48h')")
    return int(match.group(1)) * _UNITS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Match(_Strict):
    """What the rule applies to: a subject glob, or a link-kind glob (one of them)."""

    subject: str | None = Field(default=None, min_length=1, max_length=256)
    kind: str | None = Field(default=None, pattern=r"^[a-z0-9*?][a-z0-9._*?-]{0,63}$")

    @model_validator(mode="after")
    def _one(self) -> Match:
        if (self.subject is None) == (self.kind is None):
            raise ValueError("give exactly one of 'subject' (a glob) or 'kind' (a glob)")
        return self


class State(_Strict):
    """A custody state and how long an item may stay in it (no limit when absent)."""

    name: StateName
    max_duration: str | None = None

    @model_validator(mode="after")
    def _duration(self) -> State:
        if self.max_duration is not None:
            duration_seconds(self.max_duration)
        return self

    @property
    def limit(self) -> timedelta | None:
        """The longest stay, if limited."""
        if self.max_duration is None:
            return None
        return timedelta(seconds=duration_seconds(self.max_duration))


class Handover(_Strict):
    """A two-party hand-over: who may hand over and who may receive; both sign."""

    giver: list[Party] = Field(min_length=1)
    receiver: list[Party] = Field(min_length=1)


class Transition(_Strict):
    """One allowed step; ``from`` null (or absent) is the chain's first link."""

    from_state: StateName | None = Field(default=None, alias="from")
    to_state: StateName = Field(alias="to")
    by: list[Party] = Field(default_factory=list)
    handover: Handover | None = None

    @model_validator(mode="after")
    def _who(self) -> Transition:
        if not self.by and self.handover is None:
            raise ValueError("a transition names who records it ('by') or a 'handover'")
        return self


class Rule(_Strict):
    """A whole custody rule document."""

    name: str = Field(pattern=RULE_NAME)
    description: str = Field(default="", max_length=1000)
    match: Match
    states: list[State] = Field(min_length=1, max_length=64)
    transitions: list[Transition] = Field(min_length=1, max_length=256)
    on_violation: Literal["refuse", "record-and-alert"] = "refuse"

    @model_validator(mode="before")
    @classmethod
    def _plain_states(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("states"), list):
            states = [{"name": s} if isinstance(s, str) else s for s in data["states"]]
            data = {**data, "states": states}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        names = [s.name for s in self.states]
        if len(set(names)) != len(names):
            raise ValueError("'states' names each state once")
        seen = set()
        for number, step in enumerate(self.transitions):
            for end in (step.from_state, step.to_state):
                if end is not None and end not in names:
                    raise ValueError(f"transitions[{number}] names unknown state {end!r}")
            pair = (step.from_state, step.to_state)
            if pair in seen:
                raise ValueError(f"transitions[{number}] repeats {pair[0]} -> {pair[1]}")
            seen.add(pair)
        if not any(t.from_state is None for t in self.transitions):
            raise ValueError("no transition has 'from': null (how a chain starts)")
        return self

    def state(self, name: str) -> State | None:
        """The named state, if the rule has it."""
        return next((s for s in self.states if s.name == name), None)

    def transition(self, from_state: str | None, to_state: str) -> Transition | None:
        """The allowed transition between two states, if any."""
        return next(
            (t for t in self.transitions if (t.from_state, t.to_state) == (from_state, to_state)),
            None,
        )


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "the document"


def validate_rule(data: Any) -> Rule:
    """A rule from parsed JSON/TOML; RuleError naming the first bad field."""
    if not isinstance(data, dict):
        raise RuleError("a rule document is a JSON object or a TOML table")
    try:
        return Rule.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = _field_path(tuple(error["loc"]))
        message = str(error["msg"]).removeprefix("Value error, ")
        raise RuleError(f"rule field {where}: {message}") from None


def parse_rule(text: bytes, *, toml: bool = False) -> Rule:
    """Parse and validate a JSON (or TOML) rule document."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise RuleError(f"a rule document is at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        data = tomllib.loads(text.decode("utf-8")) if toml else json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"the rule is not valid {'TOML' if toml else 'JSON'}: {exc}") from None
    return validate_rule(data)


def rule_document(rule: Rule) -> dict[str, Any]:
    """The rule as stored and exported: its JSON form with the field names of the schema."""
    return rule.model_dump(mode="json", by_alias=True, exclude_none=True)


def rule_sha256(document: dict[str, Any]) -> str:
    """Hex SHA-256 of a rule document in canonical JSON (what its ledger entry commits to)."""
    return hashlib.sha256(canonical_json(document)).hexdigest()
