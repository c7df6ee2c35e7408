"""The access-trail query: filters, page size, cursor and format, parsed from a query string.

Every problem raises :class:`TrailQueryError` naming the parameter. Unknown and
repeated parameters are errors too: a misspelt filter must not silently widen
an officer's export.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import InvalidParameter
from gateway.http.params import parse_int

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
OUTCOMES = ("granted", "denied")
FORMATS = ("json", "csv")
PARAMETERS = (
    "person",
    "document",
    "outcome",
    "action",
    "from",
    "to",
    "node",
    "limit",
    "cursor",
    "format",
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_WORD = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_ACTION = re.compile(r"[a-z_.]{1,32}")
_RFC3339 = re.compile(  # ASCII digits: ``\d`` would take any script's digits
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class TrailQueryError(InvalidParameter):
    """A trail query parameter is malformed; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(parameter, f"parameter {parameter!r}: {message}")


@dataclass(frozen=True)
class TrailQuery:
    """Filters (all optional, combined with AND) and paging."""

    actor: str | None = None
    document: str | None = None
    outcome: str | None = None
    action: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    node: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: int | None = None  # events with a smaller id than this (newest first)
    format: str = "json"
    limit_given: bool = False


def parse_query(pairs: Iterable[tuple[str, str]]) -> TrailQuery:
    """Parse ``(name, value)`` pairs from a query string."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise TrailQueryError(name, f"unknown parameter (known: {', '.join(PARAMETERS)})")
        if name in values:
            raise TrailQueryError(name, "given more than once")
        values[name] = value.strip()
    start, end = _time(values, "from"), _time(values, "to")
    if start is not None and end is not None and start > end:
        raise TrailQueryError("from", "must not be later than 'to'")
    return TrailQuery(
        actor=_actor(values.get("person")),
        document=_match(values, "document", _UUID, "a document id (lower-case UUID)"),
        outcome=_choice(values, "outcome", OUTCOMES),
        action=_match(values, "action", _ACTION, "an action name such as 'download'"),
        start=start,
        end=end,
        node=_match(values, "node", _WORD, "a node name"),
        limit=_int(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        cursor=_cursor(values.get("cursor")),
        format=_choice(values, "format", FORMATS) or "json",
        limit_given="limit" in values,
    )


def _actor(value: str | None) -> str | None:
    """``alice`` means the person ``person:alice``; ``client:x`` is taken as given."""
    if value is None:
        return None
    if not _WORD.fullmatch(value):
        raise TrailQueryError("person", "expected a username or an actor such as client:name")
    return value if ":" in value else f"person:{value}"


def _match(values: dict[str, str], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not pattern.fullmatch(value):
        raise TrailQueryError(name, f"expected {what}")
    return value


def _choice(values: dict[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if value not in choices:
        raise TrailQueryError(name, f"expected one of {', '.join(choices)}")
    return value


def _int(values: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = values.get(name)
    if text is None:
        return default
    try:
        return parse_int(name, text, low=low, high=high)
    except InvalidParameter:
        raise TrailQueryError(name, f"expected a whole number from {low} to {high}") from None


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_int("cursor", text, low=1)
    except InvalidParameter:
        raise TrailQueryError("cursor", "expected the next_cursor of a previous page") from None


def _time(values: dict[str, str], name: str) -> datetime | None:
    text = values.get(name)
    if text is None:
        return None
    if not _RFC3339.fullmatch(text):
        raise TrailQueryError(
            name, "expected an RFC 3339 time, e.g. 2026-01-31T12:00:00Z (send '+' as %2B)"
        )
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise TrailQueryError(name, "not a valid date and time") from None
    return moment.astimezone(UTC)  # SQLite compares stored UTC text
