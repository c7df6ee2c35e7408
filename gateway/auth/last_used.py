"""When a bearer token was last used: recorded off the request path, best effort.

Authenticating used to write ``last_used_at`` inline, so a database write lock
(another process's long transaction on SQLite) turned every read-only API call
into a wait and then a 500. The timestamp is advisory (granularity five
minutes), so requests only note the token here; one background task writes
the noted tokens in one UPDATE per batch, and a failed write is logged and
dropped: it never fails or delays a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from gateway.auth.principals import ApiToken

log = logging.getLogger("sekisho.auth")
_noted: dict[int, datetime] = {}
_writer: asyncio.Task[None] | None = None


def note_use(token_id: int, when: datetime) -> None:
    """Remember that a token was used; written soon, in the background."""
    global _writer
    _noted[token_id] = when
    running = asyncio.get_running_loop()
    if _writer is None or _writer.done() or _writer.get_loop() is not running:
        _writer = asyncio.create_task(_write_noted())


async def _write_noted() -> None:
    while _noted:
        batch = dict(_noted)
        _noted.clear()
        try:
            await ApiToken.filter(id__in=list(batch)).update(last_used_at=max(batch.values()))
        except Exception as exc:  # advisory: never the request's problem
            log.warning("could not record the use of %d token(s): %s", len(batch), exc)


async def flush_noted() -> None:
    """Wait for pending writes (before the database closes)."""
    if (
        _writer is not None
        and not _writer.done()
        and _writer.get_loop() is asyncio.get_running_loop()
    ):
        with contextlib.suppress(Exception):
            await _writer
