"""Shared SQL: placeholders bind on SQLite and PostgreSQL, and nothing else is taken for one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import connections

from gateway.db.sql import PostgresOnlyQuery, for_connection, for_sqlite, numbered
from tests.gateway.databases import database_url, opened


def test_placeholders_are_numbered_in_order() -> None:
    assert numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT '?' , ?", "SELECT '?' , $1"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
        ("SELECT E'\\'?', ?", "SELECT E'\\'?', $1"),
        ("SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1"),
        ("SELECT $q$ ' ? $q$, ?", "SELECT $q$ ' ? $q$, $1"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = $1'),
        ("SELECT 1 -- why?\n, ?", "SELECT 1 -- why?\n, $1"),
        ("SELECT /* ? */ ?", "SELECT /* ? */ $1"),
    ],
)
def test_question_marks_in_literals_identifiers_and_comments_are_not_placeholders(
    query: str, expected: str
) -> None:
    assert numbered(query) == expected


def test_jsonb_operators_are_written_doubled() -> None:
    assert numbered("SELECT ? WHERE d ?? 'k' AND d ??| ? AND d ??& ?") == (
        "SELECT $1 WHERE d ? 'k' AND d ?| $2 AND d ?& $3"
    )


def test_a_postgres_only_query_is_refused_on_sqlite() -> None:
    with pytest.raises(PostgresOnlyQuery):
        for_sqlite("SELECT 1 WHERE d ?? 'k'")
    assert for_sqlite("SELECT '??', ?") == "SELECT '??', ?"


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with opened(database_url(request, tmp_path)):
        yield str(request.param)


async def test_literal_question_marks_survive_a_real_round_trip(database: str) -> None:
    conn = connections.get("default")
    query = "SELECT 'why?' AS text, ? AS first, ? AS second -- really?"
    rows = await conn.execute_query_dict(for_connection(query, conn), ["a", "b"])
    assert rows == [{"text": "why?", "first": "a", "second": "b"}]


async def test_jsonb_operator_binds_on_postgres(database: str) -> None:
    if database != "postgres":
        pytest.skip("jsonb is PostgreSQL's")
    conn = connections.get("default")
    query = "SELECT CAST(? AS jsonb) ?? ? AS has_key"
    rows = await conn.execute_query_dict(for_connection(query, conn), ['{"k": 1}', "k"])
    assert rows == [{"has_key": True}]
