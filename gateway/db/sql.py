"""Hand-written SQL that runs on both SQLite and PostgreSQL.

Queries are written with ``?`` placeholders (SQLite's); for asyncpg they become
``$1``, ``$2`` ... Values are always bound parameters, never interpolated.
"""

from __future__ import annotations

import functools

from tortoise.backends.base.client import BaseDBAsyncClient


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    """True when the connection speaks PostgreSQL."""
    return bool(conn.capabilities.dialect == "postgres")


def for_connection(query: str, conn: BaseDBAsyncClient) -> str:
    """``query`` with its placeholders in the connection's style."""
    return _numbered(query) if is_postgres(conn) else query


@functools.lru_cache(maxsize=512)
def _numbered(query: str) -> str:
    """``?`` placeholders as ``$1``, ``$2`` ... (queries repeat: each is rewritten once)."""
    parts = query.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
