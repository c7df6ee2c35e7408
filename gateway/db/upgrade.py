"""Bring a database made by an earlier release up to today's models: the columns added since.

``init`` and ``serve`` create missing tables (Tortoise's ``generate_schemas``), but a
table that exists keeps the columns it was made with. Each column added to an
existing table since the first release is listed here with its definition and an
optional back-fill; :func:`add_missing_columns` adds what a database lacks, once,
and says what it did. Indexes the ORM cannot declare (partial unique ones) are
listed too; :func:`add_missing_indexes` makes them on new and old databases alike.
Dropping or changing a column is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import connections
from tortoise.exceptions import OperationalError


@dataclass(frozen=True)
class AddedColumn:
    """One column added to an existing table, with SQL valid on SQLite and PostgreSQL."""

    table: str
    column: str
    definition: str
    backfill: str = ""
    postgres_definition: str = ""  # where PostgreSQL's type differs (JSON is JSONB there)


ADDED_COLUMNS: tuple[AddedColumn, ...] = (
    AddedColumn(
        "api_client",
        "chain_writers",
        "JSON NOT NULL DEFAULT '[]'",
        postgres_definition="JSONB NOT NULL DEFAULT '[]'::jsonb",
    ),
    AddedColumn(
        "anchor_record",
        "owner",
        "VARCHAR(64) NOT NULL DEFAULT ''",
        # a chain made before owners existed belongs to the client that started it
        "UPDATE anchor_record SET owner = (SELECT first.client FROM anchor_record AS first "
        "WHERE first.subject_sha256 = anchor_record.subject_sha256 AND first.sequence = 1) "
        "WHERE owner = ''",
    ),
    AddedColumn("portal_session", "step_up", "VARCHAR(16) NOT NULL DEFAULT ''"),
    AddedColumn("anchor_record", "rule", "VARCHAR(64)"),  # the custody rule it was checked by
    AddedColumn("anchor_record", "rule_version", "INT"),
    AddedColumn("anchor_record", "handover", "CHAR(36)", postgres_definition="UUID"),
    # openings moved from the randomly keyed ledger_opening table into the entry's row
    AddedColumn("ledger_pending", "opening", "BLOB", postgres_definition="BYTEA"),
    AddedColumn(
        "ledger_leaf",
        "opening",
        "BLOB",
        "UPDATE ledger_leaf SET opening = (SELECT o.opening FROM ledger_opening AS o "
        "WHERE o.leaf_hash = ledger_leaf.leaf_hash) WHERE opening IS NULL",
        postgres_definition="BYTEA",
    ),
)


@dataclass(frozen=True)
class AddedIndex:
    """A unique index, possibly partial, in SQL valid on SQLite and PostgreSQL."""

    name: str
    table: str
    columns: str  # "(a, b)"
    where: str = ""


# one pending two-person request per document and action: of two racing requests the
# insert lets one in (gateway/documents/approvals.py); the duplicates an earlier release
# could store are closed first (approvals.close_duplicates, run by ``init``)
ONE_PENDING = AddedIndex(
    "approval_request_one_pending",
    "approval_request",
    "(document_id, action)",
    "status = 'pending'",
)
ADDED_INDEXES: tuple[AddedIndex, ...] = (ONE_PENDING,)


async def has_index(name: str) -> bool:
    """Whether the database has an index of this name."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        query = "SELECT 1 FROM pg_indexes WHERE indexname = $1"
    else:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
    _, rows = await connection.execute_query(query, [name])
    return bool(rows)


async def add_missing_indexes(indexes: tuple[AddedIndex, ...] = ADDED_INDEXES) -> list[str]:
    """Make the listed indexes a database lacks; the names of those made."""
    made = []
    for spec in indexes:
        if await has_index(spec.name):
            continue
        where = f" WHERE {spec.where}" if spec.where else ""
        await connections.get("default").execute_script(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {spec.name} ON {spec.table} {spec.columns}{where}"
        )
        made.append(spec.name)
    return made


async def _has_column(table: str, column: str) -> bool:
    # unquoted: SQLite reads an unknown double-quoted name as a string literal
    try:
        query = f"SELECT {column} FROM {table} WHERE 1 = 0"  # noqa: S608 - names from ADDED_COLUMNS
        await connections.get("default").execute_query(query)
    except OperationalError:
        return False
    return True


async def add_missing_columns(columns: tuple[AddedColumn, ...] = ADDED_COLUMNS) -> list[str]:
    """Add the listed columns a database lacks (and back-fill them); the ones added."""
    added = []
    connection = connections.get("default")
    postgres = connection.capabilities.dialect == "postgres"
    for spec in columns:
        if await _has_column(spec.table, spec.column):
            continue
        definition = spec.postgres_definition if postgres and spec.postgres_definition else None
        await connection.execute_script(
            f"ALTER TABLE {spec.table} ADD COLUMN {spec.column} {definition or spec.definition}"
        )
        if spec.backfill:
            await connection.execute_script(spec.backfill)
        added.append(f"{spec.table}.{spec.column}")
    return added
