"""Model rows as plain INSERT statements, for writes that run in one hop on SQLite.

A Tortoise transaction on SQLite costs one event-loop round trip per statement
(plus BEGIN and COMMIT) while it holds the process's one connection; on a busy
loop each round trip waits behind every other ready request, and every other
write waits behind the transaction. :meth:`TurnTakingSqliteClient.write_at_once`
runs a whole transaction on its thread instead. This module gives such a
transaction the rows of Tortoise models: the INSERT Tortoise itself would run,
with the values its fields convert (defaults, ``auto_now_add``, JSON, UUIDs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise import connections
from tortoise.models import Model
from tortoise.queryset import UpdateQuery


@dataclass(frozen=True)
class RowInsert:
    """One model instance's INSERT, run on a thread's own connection.

    The values are read from the instance when the row is inserted, so fields set
    inside the transaction (a queue id just assigned) are written.
    """

    instance: Model
    sql: str
    columns: tuple[str, ...]
    generated_key: bool

    def run(self, db: sqlite3.Connection) -> None:
        """Insert the row; a generated key is set on the instance, as ``create`` would."""
        fields = self.instance._meta.fields_map
        values = [
            fields[name].to_db_value(getattr(self.instance, name), self.instance)
            for name in self.columns
        ]
        cursor = db.execute(self.sql, values)
        if self.generated_key:
            self.instance.pk = cursor.lastrowid
        self.instance._saved_in_db = True


def insert_of(instance: Model, connection_name: str = "default") -> RowInsert:
    """The INSERT of ``instance`` on the SQLite connection ``connection_name``."""
    model = type(instance)
    client = connections.get(connection_name)
    executor = client.executor_class(model=model, db=client)
    generated_key = not instance._custom_generated_pk and bool(model._meta.generated_db_fields)
    if generated_key:
        columns, sql = executor.regular_columns, executor.insert_query
    else:
        columns, sql = executor.regular_columns_all, executor.insert_query_all
    return RowInsert(instance, sql, tuple(columns), generated_key)


@dataclass(frozen=True)
class RowUpdate:
    """One UPDATE statement with its bound values, run on a thread's own connection."""

    sql: str
    values: tuple[Any, ...]

    def run(self, db: sqlite3.Connection) -> int:
        """Run the statement; the number of rows it changed."""
        return db.execute(self.sql, self.values).rowcount


def update_of(query: UpdateQuery) -> RowUpdate:
    """The statement Tortoise would run for ``Model.filter(...).update(...)``."""
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, values = query.query.get_parameterized_sql()
    return RowUpdate(sql, tuple(values))


def run_all(inserts: Sequence[RowInsert], db: sqlite3.Connection) -> None:
    """Insert every row, in order, on the transaction's connection."""
    for insert in inserts:
        insert.run(db)
