"""A document and one of its versions in one hand-written query.

Every read of a document looks up the document and then a version of it. Through
the ORM that was two queries, each rebuilt from the query builder on every call;
profiling the 4 KiB read benchmark (B5) put the two at about a third of the
event-loop thread's CPU. This is one LEFT JOIN, its text built once; the rows
become the same model objects the ORM would have made.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime
from typing import Any

from tortoise import connections, fields
from tortoise.models import Model

from gateway.db.sql import for_connection
from gateway.documents.models import Document, DocumentVersion


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{c}" AS "{alias}_{c}"' for c in sorted(model._meta.db_fields))


@functools.cache
def _query() -> str:
    """Built on first use: the models' columns are known once Tortoise has started."""
    selected = f"{_columns(Document, 'd')}, {_columns(DocumentVersion, 'v')}"
    return (
        "SELECT " + selected + " "  # column names come from the models; values are bound
        'FROM "document" d LEFT JOIN "document_version" v '
        'ON v."document_id" = d."id" AND v."version" = COALESCE(?, d."current_version") '
        'WHERE d."id" = ?'
    )


@functools.cache
def _datetime_columns(model: type[Model]) -> frozenset[str]:
    return frozenset(
        field.source_field or name
        for name, field in model._meta.fields_map.items()
        if isinstance(field, fields.DatetimeField)
    )


def _model(model: type[Model], alias: str, row: dict[str, Any]) -> Any:
    prefix = f"{alias}_"
    values = {c: row[prefix + c] for c in model._meta.db_fields}
    for column in _datetime_columns(model):
        # SQLite hands back ISO 8601 text: the C parser is several times faster than
        # the ORM's; anything it does not take is left for the ORM to parse.
        text = values[column]
        if isinstance(text, str):
            with contextlib.suppress(ValueError):
                values[column] = datetime.fromisoformat(text)
    return model._init_from_db(**values)


async def document_and_version(
    document_id: str, version: int | None
) -> tuple[Document | None, DocumentVersion | None]:
    """The document and its given (or current) version; None for what does not exist."""
    conn = connections.get("default")
    rows = await conn.execute_query_dict(for_connection(_query(), conn), [version, document_id])
    if not rows:
        return None, None
    row = rows[0]
    document: Document = _model(Document, "d", row)
    if row["v_id"] is None:
        return document, None
    found: DocumentVersion = _model(DocumentVersion, "v", row)
    return document, found
