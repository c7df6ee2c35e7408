"""Hand-written SQL that runs on both SQLite and PostgreSQL.

Queries are written with ``?`` placeholders (SQLite's); for asyncpg they become
``$1``, ``$2`` ... Values are always bound parameters, never interpolated.

The rewrite reads the query as SQL, not as text: a ``?`` inside a string
literal (``'...'``, ``E'...'``, ``$tag$...$tag$``), a quoted identifier or a
comment is left alone. PostgreSQL's jsonb operators ``?``, ``?|`` and ``?&``
are written ``??``, ``??|`` and ``??&`` (JDBC's escape); such a query is
PostgreSQL-only and refused on SQLite rather than bound wrongly.
"""

from __future__ import annotations

import functools
import re

from tortoise.backends.base.client import BaseDBAsyncClient

# One token of SQL that may contain a "?" that is not a placeholder, or a "?" itself.
_TOKEN = re.compile(
    r"""
      (?P<escaped>[Ee]'(?:[^'\\]|\\.|'')*')       # E'...' (backslash escapes)
    | (?P<string>'(?:[^']|'')*')                  # '...' ('' escapes a quote)
    | (?P<ident>"(?:[^"]|"")*")                   # "quoted identifier"
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)?\$)  # $tag$...$tag$
    | (?P<line>--[^\n]*)                          # -- comment
    | (?P<block>/\*.*?\*/)                        # /* comment */
    | (?P<operator>\?\?)                          # jsonb ? written ??
    | (?P<mark>\?)                                # a placeholder
    """,
    re.VERBOSE | re.DOTALL,
)


class PostgresOnlyQuery(ValueError):
    """A query that uses PostgreSQL's jsonb ``?`` operators was run on SQLite."""


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    """True when the connection speaks PostgreSQL."""
    return bool(conn.capabilities.dialect == "postgres")


def for_connection(query: str, conn: BaseDBAsyncClient) -> str:
    """``query`` with its placeholders in the connection's style."""
    return numbered(query) if is_postgres(conn) else for_sqlite(query)


@functools.lru_cache(maxsize=512)
def numbered(query: str) -> str:
    """``?`` placeholders as ``$1``, ``$2`` ... and ``??`` as PostgreSQL's ``?`` operator.

    Queries repeat, so each text is rewritten once.
    """
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match.group("mark"):
            count += 1
            return f"${count}"
        if match.group("operator"):
            return "?"
        return match.group(0)

    return _TOKEN.sub(replace, query)


@functools.lru_cache(maxsize=512)
def for_sqlite(query: str) -> str:
    """``query`` unchanged (SQLite binds ``?`` itself), refused if it needs PostgreSQL."""
    if any(match.group("operator") for match in _TOKEN.finditer(query)):
        raise PostgresOnlyQuery("query uses a jsonb ?? operator, which SQLite does not have")
    return query
