"""Group commit on SQLite and PostgreSQL: a row the database refuses fails only its caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from tortoise import connections

from gateway.db.group_commit import GroupCommit
from gateway.db.sql import for_connection
from gateway.db.transaction import transaction
from gateway.errors import Unavailable
from tests.gateway.databases import database_url, opened


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[None]:
    async with opened(database_url(request, tmp_path)):
        await connections.get("default").execute_script(
            "CREATE TABLE probe (n INTEGER NOT NULL CHECK (n >= 0))"
        )
        yield


async def insert(values: Sequence[int]) -> list[None]:
    """All rows in one transaction: one refused row rolls the whole batch back."""
    async with transaction() as conn:
        query = for_connection("INSERT INTO probe (n) VALUES (?)", conn)
        for value in values:
            await conn.execute_query(query, [value])
    return [None] * len(values)


async def stored() -> list[int]:
    rows = await connections.get("default").execute_query_dict("SELECT n FROM probe ORDER BY n")
    return [int(r["n"]) for r in rows]


@pytest.mark.usefixtures("database")
async def test_a_refused_row_fails_alone_and_the_rest_of_its_batch_is_stored() -> None:
    commit: GroupCommit[int, None] = GroupCommit("probe", insert, lambda: Unavailable("no"))
    values = [*range(30), -1, *range(30, 60)]
    outcomes = await asyncio.gather(*(commit.submit(v) for v in values), return_exceptions=True)
    failed = [v for v, o in zip(values, outcomes, strict=True) if isinstance(o, Exception)]
    assert failed == [-1]
    assert all(isinstance(o, Unavailable) for o in outcomes if isinstance(o, Exception))
    assert await stored() == list(range(60))
