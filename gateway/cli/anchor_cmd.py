"""``sekisho ledger anchor``, and the anchorings section of ``sekisho ledger verify``.

``ledger anchor`` asks every configured TSA to timestamp the newest checkpoint
now, from the terminal: the token is stored in the database and the
``checkpoint.anchored`` entry is queued for the running sequencer.
"""

from __future__ import annotations

import argparse
import base64
from typing import Any

from gateway.anchoring.checks import AnchorCheck, LogIdentity, check_anchors
from gateway.anchoring.service import AnchorOutcome
from gateway.anchoring.wiring import build_anchoring, trusted_tsas
from gateway.cli.offline import node_database, operator_actor, run_async
from gateway.config import Settings
from gateway.errors import BadRequest
from gateway.ledger.audit.model import LogKey
from gateway.ledger.store import TortoiseLedgerStore


def register(sub: Any) -> None:
    """Add ``ledger anchor`` to the ``ledger`` subcommands."""
    anchor = sub.add_parser(
        "anchor", help="have every configured TSA timestamp the newest checkpoint now"
    )
    anchor.set_defaults(handler=run_ledger_anchor)


def run_ledger_anchor(args: argparse.Namespace, settings: Settings) -> int:
    """Anchor now; one line per TSA; exit 1 when any TSA failed."""
    del args
    if not settings.anchoring.tsas:
        raise BadRequest("no TSA is configured: add [[anchoring.tsas]] (docs/deployment.md)")
    outcomes = run_async(_anchor(settings))
    for outcome in outcomes:
        print(outcome_line(outcome))
    return 1 if any(o.state == "failed" for o in outcomes) else 0


async def _anchor(settings: Settings) -> list[AnchorOutcome]:
    async with node_database(settings) as queue:
        anchoring, transport = build_anchoring(settings, TortoiseLedgerStore(), queue)
        await transport.start()
        try:
            return await anchoring.anchor_now(actor=operator_actor())
        finally:
            await transport.close()


def _root(root: bytes) -> str:
    return base64.b64encode(root).decode()


def outcome_line(outcome: AnchorOutcome) -> str:
    """One line: what the TSA did with the checkpoint."""
    where = f"checkpoint {outcome.size} (root {_root(outcome.root)})"
    if outcome.state == "anchored":
        when = outcome.gen_time.isoformat() if outcome.gen_time else "?"
        return f"anchored at {outcome.tsa}: {where} at {when}, token sha256 {outcome.token_sha256}"
    if outcome.state == "already":
        return f"already anchored at {outcome.tsa}: {where}"
    return f"anchoring FAILED at {outcome.tsa}: {outcome.error}"


async def anchor_checks(settings: Settings, key: LogKey) -> list[AnchorCheck]:
    """Every recent anchoring re-checked (the database must be open)."""
    identity = LogIdentity(key.origin, key.name, key.public_key)
    return await check_anchors(TortoiseLedgerStore(), trusted_tsas(settings), identity)


def check_line(check: AnchorCheck) -> str:
    """One line per anchoring: checkpoint, TSA, time, and whether token and tree hold."""
    head = (
        f"anchor {check.id}: checkpoint {check.size} (root {_root(check.root)}) "
        f"at {check.tsa}, {check.gen_time.isoformat()}:"
    )
    token = "token OK" if check.token_ok else f"token DOES NOT VERIFY ({check.token_problem})"
    tree = "tree consistent" if check.tree_ok else f"tree INCONSISTENT ({check.tree_problem})"
    return f"{head} {token}; {tree}"
