"""``sekisho witness init``: data directory, token, cosigning key and the witness schema.

Idempotent like the gateway's ``init``: each step checks before it creates,
and the report always carries the witness's verifier key so the operator can
hand it to the log operators.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tortoise import connections
from tortoise.exceptions import OperationalError

from gateway.bootstrap import InitReport, _open_or_provision_token
from gateway.config import Settings
from gateway.db.setup import close_database, open_database
from gateway.errors import SekishoError
from gateway.node_token import require_on_token
from gateway.witness.app import WITNESS_MODELS
from gateway.witness.cosigner import Cosigner
from gateway.witness.models import WitnessedLog
from hsm import Function, KeyAlgorithm

__all__ = ["WitnessInit", "WitnessNotInitialised", "initialise_witness", "witness_database"]


class WitnessNotInitialised(SekishoError):
    """The witness has no database yet."""

    code = "not_initialised"


@dataclass
class WitnessInit:
    """What ``witness init`` created, and the cosigner's name and verifier key."""

    name: str
    vkey: str
    created: list[str] = field(default_factory=list)


async def initialise_witness(settings: Settings) -> WitnessInit:
    """Create whatever the witness lacks; return its verifier key either way."""
    report = InitReport()
    if not settings.data_dir.exists():
        settings.data_dir.mkdir(parents=True, mode=0o700)
        report.created.append(f"data directory {settings.data_dir}")
    token = await _open_or_provision_token(settings, report)
    try:
        label = settings.witness.key
        if not await token.has_key(label):
            # tlog-cosignature/v1 is Ed25519 only: say so now if the key's token (the
            # default one, or the one hsm.keys.witness names) lacks CKM_EDDSA.
            await require_on_token(token, Function.WITNESS, label)
            await token.generate_key(label, KeyAlgorithm.ED25519)
            report.created.append(f"key {label} (ed25519): cosigns checkpoints (tlog-cosignature)")
        cosigner = await Cosigner.create(token, label, settings.witness_name)
    finally:
        await token.close()
    url = settings.witness_database_url
    await open_database(url, model_modules=WITNESS_MODELS)
    try:
        try:
            await WitnessedLog.exists()
        except OperationalError:  # a missing table is a missing schema
            await close_database()
            await open_database(url, create_schema=True, model_modules=WITNESS_MODELS)
            report.created.append("witness database schema")
        if await _upgrade_schema():
            report.created.append("witness_log.token_file column (mirror credentials)")
    finally:
        await close_database()
    return WitnessInit(cosigner.name, cosigner.vkey, report.created)


@contextlib.asynccontextmanager
async def witness_database(settings: Settings) -> AsyncIterator[None]:
    """Open an initialised witness's database (beside a running witness, too)."""
    url = settings.witness_database_url
    hint = (
        f"no initialised witness in data dir {settings.data_dir} (relative paths are taken "
        "from the current directory); point SEKISHO_DATA or --config FILE at the witness's "
        "data dir, or run 'sekisho witness init' only to create a new witness"
    )
    if _missing_sqlite_file(url):
        raise WitnessNotInitialised(hint)
    await open_database(url, model_modules=WITNESS_MODELS)
    try:
        try:
            await WitnessedLog.exists()
        except OperationalError:
            raise WitnessNotInitialised(hint) from None
        await _upgrade_schema()
        yield
    finally:
        await close_database()


async def _upgrade_schema() -> bool:
    """Add the columns a witness database made by an older version lacks; True if it did."""
    conn = connections.get("default")
    try:  # unquoted: SQLite reads an unknown double-quoted name as a string literal
        await conn.execute_query("SELECT token_file FROM witness_log WHERE 1 = 0")
    except OperationalError:
        await conn.execute_script(
            "ALTER TABLE witness_log ADD COLUMN token_file TEXT NOT NULL DEFAULT ''"
        )
        return True
    return False


def _missing_sqlite_file(url: str) -> bool:
    return url.startswith("sqlite://") and not os.path.exists(url.removeprefix("sqlite://"))
