"""Database connection set-up (Tortoise ORM on SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from gateway.errors import Unavailable

MODEL_MODULES = [
    "gateway.auth.principals",
    "gateway.ledger.models",
    "gateway.anchoring.models",
    "gateway.documents.models",
    "gateway.signing.models",
    "gateway.auth.models",
    "gateway.custody.models",
    "gateway.oversight.models",
]


def tortoise_config(
    database_url: str, model_modules: Sequence[str] = MODEL_MODULES
) -> dict[str, Any]:
    """The Tortoise configuration for one database URL (a witness node passes its own models)."""
    if database_url.startswith("sqlite://"):
        connection: Any = {
            "engine": "gateway.db.sqlite_engine",
            "credentials": {
                "file_path": database_url.removeprefix("sqlite://"),
                "journal_mode": "WAL",
                "synchronous": "FULL",
                "busy_timeout": 10000,
            },
        }
    else:
        connection = database_url.replace("postgresql://", "postgres://", 1)
    return {
        "connections": {"default": connection},
        "apps": {"sekisho": {"models": list(model_modules), "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


async def open_database(
    database_url: str, *, create_schema: bool = False, model_modules: Sequence[str] = MODEL_MODULES
) -> None:
    """Initialise Tortoise for the process; optionally create missing tables."""
    # Tortoise caches generated SQL per connection name, not per backend: a process
    # that opens SQLite and later PostgreSQL (tests, tools) must not reuse it.
    EXECUTOR_CACHE.clear()
    try:
        await Tortoise.init(
            config=tortoise_config(database_url, model_modules), _enable_global_fallback=True
        )
        if create_schema:
            await Tortoise.generate_schemas(safe=True)
    except OSError as exc:
        raise Unavailable(f"the database is unreachable: {exc.strerror or exc}") from None


async def close_database() -> None:
    """Close every connection."""
    await Tortoise.close_connections()


async def database_ready() -> bool:
    """True when a trivial query succeeds."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # any failure means not ready; the reason is logged by the caller
        return False
    return True
