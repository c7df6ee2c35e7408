"""``sekisho keys``: key-encryption-key rotation (``rotate-kek``, ``remove-kek``, ``kek-status``).

:mod:`gateway.cli.keys_cmd` registers ``keys`` and adds these with :func:`add_kek_commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.cli.inputs import bounded_int
from gateway.cli.offline import node_database, operator_actor, run_async
from gateway.cli.progress import ProgressBar
from gateway.cli.wording import count_of
from gateway.config import Settings
from gateway.documents.kek import (
    DEFAULT_BATCH,
    RotationReport,
    kek_states,
    remove_kek,
    rotate_kek,
)
from gateway.errors import SekishoError
from gateway.ledger.queued import QueuedLedger
from gateway.node_token import open_node_token
from hsm import KekType, Token

_POSITIVE = bounded_int(1)
TokenAction = Callable[[Token, QueuedLedger], Awaitable[int]]


class RotationIncomplete(SekishoError):
    """Some data keys could not be rewrapped."""

    code = "rotation_incomplete"


def add_kek_commands(sub: Any) -> None:
    """Add rotate-kek, remove-kek and kek-status to a ``keys`` sub-parser group."""
    rotate = sub.add_parser(
        "rotate-kek", help="new key-encryption key; rewrap every data key (resumable)"
    )
    rotate.add_argument(
        "--batch", type=_POSITIVE, default=DEFAULT_BATCH, help="rows per transaction"
    )
    rotate.add_argument("--limit", type=_POSITIVE, help="stop after N rows; run again to continue")
    rotate.add_argument(
        "--kek-type",
        choices=[t.value for t in KekType],
        help="type of the new KEK (default: what 'sekisho hsm status' shows the token chooses)",
    )
    rotate.set_defaults(handler=run_rotate)
    remove = sub.add_parser("remove-kek", help="destroy a retired key-encryption key")
    remove.add_argument("--version", type=_POSITIVE, required=True, help="the KEK version")
    remove.set_defaults(handler=run_remove)
    status = sub.add_parser("kek-status", help="KEK versions and the data keys each wraps")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=run_status)


def _with_token(settings: Settings, action: TokenAction) -> int:
    async def main() -> int:
        async with node_database(settings) as ledger:
            token = await open_node_token(settings)
            try:
                return await action(token, ledger)
            finally:
                await token.close()

    return run_async(main())


def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Rotate (or resume rotating) the KEK and say what happened."""
    bar = ProgressBar(sys.stderr, "rewrapping")

    async def action(token: Token, ledger: QueuedLedger) -> int:
        try:
            report = await rotate_kek(
                token,
                settings,
                progress=bar.update,
                batch=args.batch,
                limit=args.limit,
                ledger=ledger,
                actor=operator_actor(),
                kek_type=KekType(args.kek_type) if args.kek_type else None,
            )
        finally:
            bar.close()
        print(describe_rotation(report))
        if report.failed:
            shown = ", ".join(f"{doc} v{ver}" for doc, ver in report.failed[:5])
            raise RotationIncomplete(
                f"{count_of(len(report.failed), 'data key')} did not unwrap and stay under "
                "their old KEK "
                f"(alerts ledgered): {shown}"
            )
        return 0

    return _with_token(settings, action)


def describe_rotation(report: RotationReport) -> str:
    """A few lines for the operator."""
    verb = "rotated" if report.started else "resumed rotation of"
    lines = [
        f"{verb} {report.key} to version {report.new_version} ({report.new_label}): "
        f"rewrapped {count_of(report.rewrapped, 'data key')}, "
        f"skipped {report.skipped} changed meanwhile, "
        f"in {report.seconds:.1f} s"
    ]
    if report.remaining:
        lines.append(
            f"{count_of(report.remaining, 'data key')} "
            f"{'remains' if report.remaining == 1 else 'remain'} under older versions; run "
            "'sekisho keys rotate-kek' again to continue"
        )
    elif report.complete:
        lines.append("every data key is under the new version; retired versions can be removed")
    return "\n".join(lines)


def run_remove(args: argparse.Namespace, settings: Settings) -> int:
    """Destroy a retired KEK version that no row uses."""

    async def action(token: Token, ledger: QueuedLedger) -> int:
        label, removed = await remove_kek(
            token, settings, args.version, ledger=ledger, actor=operator_actor()
        )
        if removed:
            print(f"destroyed KEK version {args.version} ({label}) on the token")
        else:
            print(f"KEK version {args.version} ({label}) was already removed")
        return 0

    return _with_token(settings, action)


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print each KEK version with its status and row count."""

    async def main() -> int:
        async with node_database(settings):
            states = await kek_states(settings)
        if args.json:
            print(json.dumps([s.as_dict() for s in states], indent=2))
            return 0
        print(f"{'VERSION':<8} {'STATUS':<9} {'DATA KEYS':>9}  LABEL")
        for s in states:
            print(f"{s.version:<8} {s.status:<9} {s.rows:>9}  {s.label}")
        return 0

    return run_async(main())
