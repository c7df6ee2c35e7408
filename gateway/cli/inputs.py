"""What every ``sekisho`` command reads from its arguments and files, checked one way.

Bad input is one ``sekisho: error:`` line and a non-zero exit (``gateway.cli.main``):
numbers are bounded where argparse reads them (a 31-digit ``--batch`` once started a
KEK rotation, then crashed in SQLite), JSON files are parsed by one reader that turns
every way ``json.loads`` can fail into one line, and any text echoed back in an error
is made printable and short (:func:`one_line`).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from gateway.errors import BadRequest
from gateway.tlog.checkpoint import Checkpoint, CheckpointError
from gateway.tlog.note import MAX_VKEY_SIZE

MAX_ERROR_CHARS = 500
"""An error line is at most this long: a 100 KB argument is not echoed back whole."""

MAX_SQL_INTEGER = 2**63 - 1
"""The largest number SQLite and PostgreSQL ``BIGINT`` store."""

MAX_URL = 2048


def bounded_int(low: int, high: int = MAX_SQL_INTEGER) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` to ``high``, else a usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {one_line(text, 40)}") from None
        if value < low and high == MAX_SQL_INTEGER:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {one_line(text, 40)}")
        return value

    parse.__name__ = "number"  # argparse names the type in "invalid number value"
    return parse


PORT = bounded_int(1, 65535)
"""``--port``: a TCP port."""


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` safe to print as (part of) one terminal line.

    Line breaks, escape sequences and other control characters, and the lone
    surrogates of command-line bytes that are not UTF-8, are shown as ``\\n``,
    ``\\x1b``, ``\\udcff``; text longer than ``limit`` is cut in the middle.
    """
    shown = "".join(c if c.isprintable() else _escaped(c) for c in text)
    if len(shown) > limit:
        half = (limit - 1) // 2
        shown = f"{shown[:half]}…{shown[-half:]}"
    return shown


def _escaped(char: str) -> str:
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def not_utf8_argument(argv: Sequence[str]) -> str | None:
    """The first argument that is not valid UTF-8 text (shown escaped), or None.

    Such bytes reach Python as lone surrogates, which every database, log and
    terminal write refuses later, mid-command. Only file names may be any bytes
    the file system allows: an argument (or the value of ``--option=value``)
    naming an existing file passes.
    """
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            value = arg.partition("=")[2] if arg.startswith("--") and "=" in arg else arg
            if not os.path.lexists(value):
                return one_line(arg, 80)
    return None


def load_json(data: bytes, what: str) -> Any:
    """JSON from a file's bytes; anything that is not (or too deep, or a number too long to
    convert) is one :class:`BadRequest` naming ``what``."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadRequest(f"{what} is not JSON: {one_line(reason, 200)}") from None


def check_url(url: str, what: str = "the URL") -> str:
    """An ``http://`` or ``https://`` URL on one line, at most 2048 characters."""
    if len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise BadRequest(f"{what} must be one printable line of at most {MAX_URL} characters")
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise BadRequest(f"{what} must start with http:// or https://, not {url!r}")
    return url


def check_origin(origin: str | None) -> str | None:
    """``--origin``: None (the default), or one checkpoint origin line of sensible length.

    Checked before anything else, so that a mistyped origin is never "OK" merely
    because the log has no checkpoint yet to compare it with.
    """
    if origin is None:
        return None
    if len(origin) > MAX_VKEY_SIZE:
        raise BadRequest(f"--origin is longer than {MAX_VKEY_SIZE} characters")
    try:
        Checkpoint(origin, 0, bytes(32))
    except CheckpointError as exc:
        raise BadRequest(f"--origin: {exc.message}") from None
    return origin
