"""The one parser for integer path and query parameters (API and portal alike).

``str.isdigit()`` is true for superscripts and other Unicode digits that
``int()`` refuses, ``int()`` itself accepts Arabic-Indic digits, signs, spaces
and underscores, and refuses more than 4300 digits with a ValueError: every
one of those was a 500 somewhere. Here a parameter is ASCII digits only, at
most :data:`MAX_DIGITS` of them, within a stated range, and anything else is
an :class:`InvalidParameter` (400) that names the parameter. No aiohttp here:
``request.query`` and ``request.match_info`` are plain mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gateway.errors import InvalidParameter

MAX_DIGITS = 19
"""Enough for any 64-bit value; a longer text is refused before ``int()`` sees it."""
MAX_INT = 2**63 - 1
MAX_INT32 = 2**31 - 1
"""The largest value an INTEGER column holds on PostgreSQL (versions, sequences)."""
_ASCII_DIGITS = frozenset("0123456789")


class MultiMapping(Protocol):
    """What a query string offers: every value of a name (aiohttp's ``request.query``)."""

    def getall(self, key: str, default: list[str], /) -> list[str]: ...


def _shorten(text: str, width: int = 24) -> str:
    return repr(text if len(text) <= width else text[:width] + "...")


def parse_int(
    name: str, text: str, *, low: int = 0, high: int = MAX_INT, canonical: bool = False
) -> int:
    """``text`` as an integer from ``low`` to ``high``, or InvalidParameter naming ``name``.

    ``canonical`` also refuses leading zeroes (ledger indexes have one spelling).
    """
    ok = 0 < len(text) <= MAX_DIGITS and _ASCII_DIGITS.issuperset(text)
    if ok and canonical and len(text) > 1 and text[0] == "0":
        ok = False
    value = int(text) if ok else None
    if value is None or not low <= value <= high:
        zeroes = " without leading zeroes" if canonical else ""
        raise InvalidParameter(
            name,
            f"parameter {name!r} must be a whole number from {low} to {high}{zeroes}, "
            f"not {_shorten(text)}",
        )
    return value


def single(query: MultiMapping, name: str) -> str | None:
    """The one value of a query parameter, None when absent; repeating it is refused."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise InvalidParameter(
            name, f"parameter {name!r} is given {len(values)} times; give it once"
        )
    return values[0] if values else None


def optional_query_int(
    query: MultiMapping,
    name: str,
    *,
    low: int = 0,
    high: int = MAX_INT,
    canonical: bool = False,
) -> int | None:
    """An integer query parameter, None when absent or empty."""
    text = single(query, name)
    if text is None or text == "":
        return None
    return parse_int(name, text, low=low, high=high, canonical=canonical)


def query_int(
    query: MultiMapping, name: str, *, default: int, low: int = 0, high: int = MAX_INT
) -> int:
    """An integer query parameter; ``default`` when absent or empty."""
    value = optional_query_int(query, name, low=low, high=high)
    return default if value is None else value


def path_int(
    match_info: Mapping[str, str],
    name: str,
    *,
    low: int = 0,
    high: int = MAX_INT,
    canonical: bool = False,
) -> int:
    """An integer path parameter."""
    return parse_int(name, match_info[name], low=low, high=high, canonical=canonical)
