"""What CLI commands that work beside a running server share.

They open the node's database themselves (the server may hold it too: SQLite
in WAL mode, or PostgreSQL), ledger through the durable queue
(:class:`gateway.ledger.queued.QueuedLedger`), and name the operator as actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import re
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tortoise import Tortoise
from tortoise.exceptions import OperationalError

from gateway.auth.principals import NodeState
from gateway.config import Settings
from gateway.db.setup import close_database, open_database
from gateway.errors import SekishoError
from gateway.ledger.queued import QueuedLedger

SOURCE = "cli"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
T = TypeVar("T")


class NotInitialised(SekishoError):
    """The node has no database yet."""

    code = "not_initialised"


@contextlib.asynccontextmanager
async def node_database(settings: Settings) -> AsyncIterator[QueuedLedger]:
    """Open an initialised node's database; yields a ledger that queues entries."""
    url = settings.database_url
    hint = not_initialised_hint(settings)
    if _missing_sqlite_file(url):
        raise NotInitialised(hint)
    await open_database(url)
    try:
        try:
            initialised = await NodeState.get_or_none(key="initialised")
        except OperationalError:  # a missing table is a missing schema
            initialised = None
        if initialised is None:
            raise NotInitialised(hint)
        yield QueuedLedger(settings.node.name)
    finally:
        await close_database()


def not_initialised_hint(settings: Settings) -> str:
    """Say where the CLI looked, so nobody runs ``init`` for a second node by mistake."""
    return (
        f"no initialised node in data dir {settings.data_dir} (relative paths are taken "
        "from the current directory); point SEKISHO_DATA or --config FILE at the node's "
        "data dir, or run 'sekisho init' only to create a new node"
    )


def _missing_sqlite_file(url: str) -> bool:
    return url.startswith("sqlite://") and not Path(url.removeprefix("sqlite://")).exists()


def operator_actor() -> str:
    """How ledger entries name the person at the terminal: ``operator:<login>``."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = f"uid-{os.getuid()}"
    return "operator:" + (_UNSAFE.sub("_", login)[:64] or "unknown")


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, closing every database connection if it fails.

    A connection left open when a command fails (``init`` on a file that is not a
    database failed inside schema creation) keeps its SQLite thread alive, and the
    process then hangs at exit after printing its error.
    """

    async def closing() -> T:
        try:
            return await work
        except BaseException:
            if Tortoise.is_inited():  # else nothing to close (and no "shutdown" log line)
                await close_database()
            raise

    return asyncio.run(closing())
