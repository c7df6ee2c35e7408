"""The credential a machine reader of the log (``ledger verify --url``, a mirror) sends.

A bearer token of an API client with the ``ledger-read`` scope (or of an
officer's or auditor's personal token). It comes from a file or from the
environment, never from the command line, and is never logged.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.errors import BadRequest

MAX_TOKEN_FILE = 4096


def read_token_file(path: str) -> str:
    """The token held in ``path`` (surrounding whitespace ignored)."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_TOKEN_FILE:
            raise BadRequest(f"token file {path} is larger than {MAX_TOKEN_FILE} bytes")
        text = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise BadRequest(f"cannot read token file {path}: {reason}") from None
    if not text or any(c.isspace() for c in text):
        raise BadRequest(f"token file {path} must hold exactly one token")
    return text


def reader_token(token_file: str | None, env_name: str) -> str | None:
    """The token from ``token_file`` if given, else from ``env_name``, else None."""
    if token_file:
        return read_token_file(token_file)
    value = os.environ.get(env_name, "").strip()
    return value or None
