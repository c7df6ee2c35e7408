"""Parsing trail query strings: every mistake names its parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.trail.query import DEFAULT_LIMIT, TrailQuery, TrailQueryError, parse_query

DOC = "0b5e0f5c-3f43-4c56-9a0e-1d2b3c4d5e6f"


def test_defaults_and_a_full_query() -> None:
    assert parse_query([]) == TrailQuery()
    query = parse_query(
        [
            ("person", "alice"),
            ("document", DOC),
            ("outcome", "denied"),
            ("action", "download"),
            ("from", "2026-01-31T12:00:00Z"),
            ("to", "2026-02-01T00:00:00.5+02:00"),
            ("node", "sekisho-1"),
            ("limit", "500"),
            ("cursor", "1234"),
            ("format", "csv"),
        ]
    )
    assert query.actor == "person:alice" and query.document == DOC
    assert query.start == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert query.end == datetime(2026, 2, 1, 0, 0, 0, 500000, tzinfo=timezone(timedelta(hours=2)))
    assert (query.limit, query.cursor, query.format, query.limit_given) == (500, 1234, "csv", True)
    assert parse_query([("person", "client:billing")]).actor == "client:billing"
    assert parse_query([]).limit == DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("pairs", "parameter", "fragment"),
    [
        ([("persn", "alice")], "persn", "unknown parameter"),
        ([("outcome", "granted"), ("outcome", "denied")], "outcome", "more than once"),
        ([("outcome", "maybe")], "outcome", "granted, denied"),
        ([("document", "not-a-uuid")], "document", "document id"),
        ([("document", DOC.upper())], "document", "document id"),
        ([("person", "alice smith")], "person", "username"),
        ([("person", "x" * 129)], "person", "username"),
        ([("from", "2026-01-31")], "from", "RFC 3339"),
        ([("from", "2026-01-31T12:00:00")], "from", "RFC 3339"),
        ([("to", "2026-01-31T12:00:00 01:00")], "to", "%2B"),
        ([("to", "2026-02-30T12:00:00Z")], "to", "not a valid date"),
        ([("from", "2026-02-01T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")], "from", "later"),
        ([("limit", "0")], "limit", "1 to 500"),
        ([("limit", "501")], "limit", "1 to 500"),
        ([("limit", "ten")], "limit", "1 to 500"),
        ([("cursor", "-5")], "cursor", "next_cursor"),
        ([("cursor", "0")], "cursor", "next_cursor"),
        ([("cursor", "9" * 20)], "cursor", "next_cursor"),
        ([("format", "xml")], "format", "json, csv"),
        ([("action", "DROP TABLE")], "action", "action name"),
        ([("node", "a/b")], "node", "node name"),
    ],
)
def test_bad_parameters_are_named(
    pairs: list[tuple[str, str]], parameter: str, fragment: str
) -> None:
    with pytest.raises(TrailQueryError) as caught:
        parse_query(pairs)
    assert caught.value.parameter == parameter
    assert caught.value.status == 400
    assert fragment in caught.value.message
    assert caught.value.message.startswith(f"parameter {parameter!r}")
