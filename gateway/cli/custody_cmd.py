"""``sekisho custody``: custody rules (add, list, show) and offline chain verification."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.cli.inputs import check_origin, load_json
from gateway.cli.ledger_cmd import read_key
from gateway.cli.offline import SOURCE, node_database, operator_actor, run_async
from gateway.config import Settings
from gateway.custody.export import rule_view
from gateway.custody.offline import ExportBroken, verify_export
from gateway.custody.rules import MAX_DOCUMENT_BYTES, parse_rule
from gateway.custody.store import add_rule, latest_rules, rule_versions
from gateway.errors import BadRequest
from gateway.ledger.queued import QueuedLedger

_MAX_EXPORT = 64 << 20


def register(commands: Any) -> None:
    """Add the custody sub-commands."""
    custody = commands.add_parser("custody", help="custody rules and chain verification")
    sub = custody.add_subparsers(dest="custody_command", metavar="SUBCOMMAND", required=True)

    rules = sub.add_parser("rules", help="custody rules (each version ledgered)")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)
    add = rules_sub.add_parser("add", help="store a rule (a new version if the name exists)")
    add.add_argument("file", metavar="RULE_FILE", help="JSON, or TOML when it ends in .toml")
    add.add_argument("--toml", action="store_true", help="read the file as TOML")
    add.set_defaults(handler=run_add)
    listing = rules_sub.add_parser("list", help="the newest version of every rule")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_list)
    show = rules_sub.add_parser("show", help="every version of one rule")
    show.add_argument("name")
    show.set_defaults(handler=run_show)

    verify = sub.add_parser(
        "verify", help="verify an exported custody chain offline: receipts, links and its rule"
    )
    verify.add_argument("export", metavar="SUBJECT_EXPORT", help="the chain export (JSON)")
    verify.add_argument(
        "--key", required=True, metavar="VKEY_OR_FILE", help="the log's verifier key or its file"
    )
    verify.add_argument("--origin", help="expected checkpoint origin (default: the key name)")
    verify.set_defaults(handler=run_verify)


def _read(name: str, limit: int, what: str) -> bytes:
    path = Path(name)
    if not path.is_file():
        raise BadRequest(f"{what} file {name} does not exist")
    if path.stat().st_size > limit:
        raise BadRequest(f"{what} file {name} is larger than {limit} bytes")
    return path.read_bytes()


def _run(settings: Settings, action: Callable[[QueuedLedger], Awaitable[int]]) -> int:
    async def main() -> int:
        async with node_database(settings) as ledger:
            return await action(ledger)

    return run_async(main())


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Validate and store a rule version."""
    toml = args.toml or args.file.endswith(".toml")
    data = _read(args.file, MAX_DOCUMENT_BYTES, "rule")
    if not toml:
        load_json(data, "the rule")  # the one reader's errors: too deep, too long a number
    rule = parse_rule(data, toml=toml)

    async def action(ledger: QueuedLedger) -> int:
        stored = await add_rule(rule, ledger=ledger, actor=operator_actor(), source=SOURCE)
        print(f"custody rule {stored.name} version {stored.version} ({stored.row.sha256[:16]})")
        return 0

    return _run(settings, action)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print the newest version of every rule."""

    async def action(ledger: QueuedLedger) -> int:
        del ledger
        versions = await latest_rules()
        if args.json:
            print(json.dumps([rule_view(v) for v in versions], indent=2))
            return 0
        print(f"{'NAME':<24} {'VERSION':>7}  {'ON VIOLATION':<16} MATCH")
        for version in versions:
            match = version.rule.match
            what = f"subject {match.subject}" if match.subject else f"kind {match.kind}"
            mode = version.rule.on_violation
            print(f"{version.name:<24} {version.version:>7}  {mode:<16} {what}")
        return 0

    return _run(settings, action)


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print every version of one rule (JSON)."""

    async def action(ledger: QueuedLedger) -> int:
        del ledger
        print(json.dumps([rule_view(v) for v in await rule_versions(args.name)], indent=2))
        return 0

    return _run(settings, action)


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify an export offline; exit 1 at the first step that breaks it."""
    del settings
    key = read_key(args.key, check_origin(args.origin))
    export = load_json(_read(args.export, _MAX_EXPORT, "export"), "the export")
    try:
        result = verify_export(export, key)
    except ExportBroken as exc:
        print(f"custody chain INVALID: {exc.message}")
        return 1
    rules = ", ".join(result.rules) or "no rule"
    print(
        f"custody chain OK: {result.links} links, receipts verify, checked against {rules}; "
        f"state {result.state or '-'}"
    )
    return 0
