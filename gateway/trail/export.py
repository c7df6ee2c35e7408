"""CSV form of the access trail (RFC 4180, UTF-8, a header row)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import datetime

from gateway.ledger.entries import utc_timestamp
from gateway.trail.service import COLUMNS, TrailEvent

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_header() -> str:
    """The header row."""
    return _rows([list(COLUMNS)])


def csv_rows(events: Iterable[TrailEvent]) -> str:
    """Data rows for some events."""
    return _rows([[csv_cell(getattr(event, name)) for name in COLUMNS] for event in events])


def csv_lines(rows: Iterable[Iterable[object]]) -> str:
    """Rows of any values, as CSV lines (times in RFC 3339, formulas defused)."""
    return _rows([[csv_cell(value) for value in row] for row in rows])


def csv_filename(node: str, now: datetime, what: str = "trail") -> str:
    """A download name such as ``sekisho-trail-node1-20260131T120000Z.csv``."""
    stamp = utc_timestamp(now).replace("-", "").replace(":", "").split(".")[0]
    return f"sekisho-{what}-{_UNSAFE.sub('_', node)}-{stamp}Z.csv"


def csv_cell(value: object) -> str:
    """Text for a cell; text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_timestamp(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _rows(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
