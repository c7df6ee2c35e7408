"""Property tests of the shared parsers: integers, JSON bodies, byte ranges, group commit.

Each parser either answers or raises its own 4xx error, for any input; none
lets a ValueError, RecursionError or int-string-limit error through (a 500).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.db.group_commit import GroupCommit
from gateway.documents.reader import parse_range
from gateway.documents.stream_aead import RangeNotSatisfiable
from gateway.errors import BadRequest, InvalidParameter
from gateway.http.bodies import MAX_JSON_DEPTH, BadJson, parse_json
from gateway.http.params import MAX_DIGITS, parse_int

T = TypeVar("T")
UNICODE_DIGITS = [
    "\u00b2",  # superscript two: isdigit() but int() fails
    "\u00b9",
    "\u0663",  # Arabic-Indic three: int() takes it
    "\u09e6",  # Bengali zero
    "\u2460",  # circled one
    "\U0001d7d7",  # mathematical bold nine
    "9\u00b2",
    "1_000",
    " 1",
    "+1",
    "-0",
    "1\n",
]


def _outcome(function: Callable[..., T], *args: object) -> T | Exception:
    try:
        return function(*args)
    except Exception as exc:
        return exc


@given(st.text(max_size=40))
def test_parse_int_takes_ascii_digits_only_and_fails_as_a_400(text: str) -> None:
    valid = text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS
    if valid:
        assert parse_int("limit", text, high=10**30) == int(text)
        return
    with pytest.raises(InvalidParameter) as caught:
        parse_int("limit", text, high=10**30)
    assert caught.value.status == 400 and caught.value.parameter == "limit"
    assert "'limit'" in caught.value.message


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_parse_int_round_trips_every_64_bit_value(value: int) -> None:
    assert parse_int("index", str(value), canonical=True) == value


@pytest.mark.parametrize("text", [*UNICODE_DIGITS, "9" * 5000, "", "0x10", "1e3"])
def test_unicode_and_oversized_numbers_are_refused(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_int("version", text)


@given(st.integers(), st.integers(min_value=0, max_value=100), st.integers(min_value=0))
def test_parse_int_keeps_to_its_range(value: int, low: int, span: int) -> None:
    high = low + span
    text = str(value)
    if value < 0 or not low <= value <= high or len(text) > MAX_DIGITS:
        with pytest.raises(InvalidParameter):
            parse_int("n", text, low=low, high=high)
    else:
        assert parse_int("n", text, low=low, high=high) == value


TEXT = st.characters(blacklist_characters="\x00")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(TEXT, max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=4), inner),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_parse_json_accepts_what_json_writes(value: object) -> None:
    """Everything ``json`` writes, but a NUL in a string (below)."""
    assert parse_json(json.dumps(value).encode()) == value


@given(JSON_VALUES, st.sampled_from(["value", "key"]))
def test_parse_json_refuses_a_nul_in_any_string_or_key(value: object, where: str) -> None:
    """PostgreSQL cannot store a NUL in text: anywhere in a body it is a 400 ``bad_text``."""
    poisoned = {"x": [value, "a\x00b"]} if where == "value" else {"ok": value, "k\x00": 1}
    with pytest.raises(BadRequest) as refused:
        parse_json(json.dumps(poisoned).encode())
    assert refused.value.code == "bad_text"


@given(st.binary(max_size=64))
def test_parse_json_refuses_garbage_as_a_400(raw: bytes) -> None:
    outcome = _outcome(parse_json, raw)
    assert not isinstance(outcome, Exception) or isinstance(outcome, BadJson)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 200_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_json_is_a_400_not_a_recursion_error(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "1" + closer * depth).encode()
    with pytest.raises(BadJson):
        parse_json(raw)


def test_json_as_deep_as_allowed_is_accepted() -> None:
    raw = ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH).encode()
    assert parse_json(raw) is not None
    with pytest.raises(BadJson):
        parse_json(b"[NaN]")


@given(st.text(max_size=60), st.integers(min_value=1, max_value=2**40))
def test_parse_range_answers_or_refuses_with_416(header: str, size: int) -> None:
    found = _outcome(parse_range, header, size)
    if isinstance(found, Exception):
        assert isinstance(found, RangeNotSatisfiable) and found.status == 416
        return
    assert found is not None
    start, end = found
    assert 0 <= start <= end < size


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-" + "9" * 5000, (0, 99)),
        ("bytes=-" + "9" * 5000, (0, 99)),
        ("bytes=10-19", (10, 19)),
    ],
)
def test_huge_range_positions_saturate(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=" + "9" * 5000 + "-", "bytes=²-3", "bytes=0-1\n2"])
def test_impossible_ranges_are_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


async def test_one_bad_item_fails_only_its_own_caller() -> None:
    written: list[list[str]] = []

    async def write(items: Sequence[str]) -> list[int]:
        await asyncio.sleep(0)
        if "bad" in items:
            raise ValueError("value too long for type character varying(36)")
        written.append(list(items))
        return [len(item) for item in items]

    commit: GroupCommit[str, int] = GroupCommit("test", write, lambda: RuntimeError("refused"))
    items = [f"row-{n}" for n in range(20)]
    items.insert(7, "bad")
    results = await asyncio.gather(*(commit.submit(i) for i in items), return_exceptions=True)
    failed = [item for item, r in zip(items, results, strict=True) if isinstance(r, Exception)]
    assert failed == ["bad"]
    assert sum(len(batch) for batch in written) == 20
    assert commit.flusher is None and commit.pending() == 0
