"""Structured logging: one JSON object per line on stderr.

At debug level Tortoise logs every SQL statement with its parameters. A
query whose parameters may hold a secret the caller typed (a password in the
username field) runs inside :func:`unlogged_queries`, which drops those
records for the running task only. aiosqlite's own per-call debug records
(which repeat the statement and its parameters from a worker thread, where
the task's context is unknown) are always dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

_quiet: ContextVar[bool] = ContextVar("sekisho_unlogged_queries", default=False)


class _QuietQueries(logging.Filter):
    """Drops SQL records of a task inside :func:`unlogged_queries`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _quiet.get()


class _NoDebug(logging.Filter):
    """Drops debug records (aiosqlite's repeat every statement and its parameters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("tortoise.db_client").addFilter(_QuietQueries())
logging.getLogger("aiosqlite").addFilter(_NoDebug())


@contextlib.contextmanager
def unlogged_queries() -> Iterator[None]:
    """Queries of the running task inside this block are not logged, at any level."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON line (time, level, logger, message, extras)."""

    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    """Send JSON log lines to stderr at the given level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
