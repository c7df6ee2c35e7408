"""Test databases: SQLite in a temporary directory or a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from gateway.db.setup import close_database, open_database


def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL for a fixture parametrised with "sqlite" or "postgres"."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'test.sqlite3'}"
    return str(request.getfixturevalue("pg_database_url"))


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[None]:
    """Open (creating the schema) and close a database.

    Tortoise caches each model's INSERT statement per connection *name*, so a
    process that opens SQLite and then PostgreSQL as "default" would reuse
    SQLite's placeholders; the cache is cleared first.
    """
    EXECUTOR_CACHE.clear()
    await open_database(url, create_schema=True)
    try:
        yield
    finally:
        await close_database()
