"""``sekisho ledger accept-rollback``: the operator's ledgered recovery from a rollback alarm.

With the node stopped, it re-checks the database against the checkpoint kept
on the token, queues an ``alert.raised`` entry naming what was lost and why
the operator accepts it, and re-bases the token's checkpoint on the database's
newest one. The next start integrates the entry as the first thing after the
accepted history (docs/deployment.md, "Ledger rollback").
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.auth.principals import NodeState
from gateway.cli.offline import SOURCE, node_database, operator_actor, run_async
from gateway.config import Settings
from gateway.db.sql import for_connection
from gateway.db.transaction import transaction
from gateway.errors import BadRequest, Conflict
from gateway.ledger.rollback import INSTANCE_KEY, TokenCheckpoint, history_finding
from gateway.ledger.store import TortoiseLedgerStore
from gateway.ledger.wiring import leadership_for
from gateway.node_token import open_node_token
from hsm import Token

ALERT = "ledger.rolled_back"
MAX_REASON = 500


def register(sub: Any) -> None:
    """Add ``ledger accept-rollback`` to the ``ledger`` subcommands."""
    accept = sub.add_parser(
        "accept-rollback",
        help="accept a rolled-back or forked database ledger (node stopped; ledgered)",
    )
    accept.add_argument(
        "--reason", required=True, help="why the loss is accepted (goes into the ledger)"
    )
    accept.set_defaults(handler=run_accept_rollback)


async def kept_checkpoint_finding(token: Token, settings: Settings) -> str | None:
    """Why the open database contradicts the token's kept checkpoint, or None (read-only)."""
    kept = TokenCheckpoint(token, settings.ledger_origin)
    finding, _ = await history_finding(TortoiseLedgerStore(), kept, create=False)
    return finding


def run_accept_rollback(args: argparse.Namespace, settings: Settings) -> int:
    """Record the accepted rollback in the ledger and re-base the token's checkpoint."""
    reason = " ".join(args.reason.split())
    if not reason:
        raise BadRequest("--reason must say why the rollback is accepted")
    if len(reason) > MAX_REASON or not reason.isprintable():  # refused, never cut short
        raise BadRequest(f"--reason must be printable text of at most {MAX_REASON} characters")
    message = run_async(_accept(settings, reason))
    print(message)
    return 0


async def _drop_beyond(size: int) -> None:
    """Remove leaves, checkpoints and subtree hashes beyond ``size`` left by the lost history.

    A stored subtree at ``(level, index)`` covers entries up to ``(index+1) << level``;
    it is stale once that passes ``size``, i.e. when ``index >= size >> level``.
    """
    async with transaction() as conn:
        await conn.execute_query(
            for_connection("DELETE FROM ledger_leaf WHERE idx >= ?", conn), [size]
        )
        await conn.execute_query(
            for_connection("DELETE FROM ledger_checkpoint WHERE size > ?", conn), [size]
        )
        drop = for_connection("DELETE FROM ledger_node WHERE key >= ? AND key < ?", conn)
        for level in range(64):
            await conn.execute_query(drop, [(level << 56) | (size >> level), (level + 1) << 56])


async def _accept(settings: Settings, reason: str) -> str:
    leadership = leadership_for(settings)
    if not await leadership.try_acquire():
        raise Conflict("the node is running (it holds the sequencer lock): stop it first")
    try:
        token = await open_node_token(settings)
        try:
            async with node_database(settings) as ledger:
                store = TortoiseLedgerStore()
                kept = TokenCheckpoint(token, settings.ledger_origin)
                finding, checkpoint = await history_finding(store, kept)
                if finding is None:
                    return "ledger OK: the database agrees with the token's checkpoint"
                latest = await store.latest_checkpoint()
                size = latest.size if latest is not None else 0
                await ledger.record(
                    "alert.raised",
                    alert=ALERT,
                    detail_code="forked" if "another root" in finding else "rolled_back",
                    index=checkpoint.size if checkpoint is not None else size,
                    reason=reason,
                    actor=operator_actor(),
                    source=SOURCE,
                )
                await _drop_beyond(size)
                if kept.altered is not None:  # the log names its instance: drop the stray row
                    await NodeState.filter(key=INSTANCE_KEY).delete()
                if latest is not None:
                    await kept.write(latest)
                return (
                    f"rollback accepted: {finding}; the token's checkpoint now says {size} "
                    "entries and an alert.raised entry is queued for the next start"
                )
        finally:
            await token.close()
    finally:
        await leadership.release()
