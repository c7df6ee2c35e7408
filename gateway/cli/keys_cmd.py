"""``sekisho keys``: named signing keys (``list``, ``create``, ``rotate``) and the KEK commands.

The key-encryption-key sub-commands come from :mod:`gateway.cli.kek_cmd`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.cli import kek_cmd
from gateway.cli.offline import node_database, operator_actor, run_async
from gateway.config import Settings
from gateway.ledger.queued import QueuedLedger
from gateway.node_token import open_node_token
from gateway.signing.keymgmt import KeyManager, check_algorithm, check_key_name, check_purpose
from gateway.signing.named_keys import SIGNING_ALGORITHMS, KeyVersion, all_keys
from hsm import Token

Action = Callable[[Token, QueuedLedger], Awaitable[int]]


def register(commands: Any) -> None:
    """Add ``keys`` with the signing-key and KEK sub-commands."""
    keys = commands.add_parser("keys", help="named signing keys and the key-encryption key")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="named signing keys and their versions")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_list)
    create = sub.add_parser("create", help="a new named signing key (version 1)")
    create.add_argument("name")
    create.add_argument(
        "--algorithm",
        required=True,
        choices=[a.value for a in SIGNING_ALGORITHMS],
        help=(
            "rsa-3072 signs with RSA-PSS (timestamp keys: PKCS#1 v1.5) and needs a token "
            "that offers it"
        ),
    )
    create.add_argument(
        "--purpose", default="sign", choices=["sign", "timestamp"], help="default: sign"
    )
    create.set_defaults(handler=run_create)
    rotate = sub.add_parser("rotate", help="new version of a named key; old versions still verify")
    rotate.add_argument("name")
    rotate.set_defaults(handler=run_rotate)
    kek_cmd.add_kek_commands(sub)


def _with_token(settings: Settings, action: Action) -> int:
    async def main() -> int:
        async with node_database(settings) as ledger:
            token = await open_node_token(settings)
            try:
                return await action(token, ledger)
            finally:
                await token.close()

    return run_async(main())


def _manager(token: Token, ledger: QueuedLedger, settings: Settings) -> KeyManager:
    return KeyManager(
        token,
        ledger,
        ca_label=settings.keys.ca,
        node=settings.node.name,
        actor=operator_actor(),
    )


def _describe(version: KeyVersion) -> str:
    return (
        f"{version.name} v{version.version} ({version.algorithm.value}, {version.purpose}) "
        f"on token label {version.label}; certificate SHA-256 {version.certificate_sha256}"
    )


def run_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a named key."""
    name = check_key_name(args.name)  # before the token is opened
    algorithm = check_algorithm(args.algorithm)
    purpose = check_purpose(args.purpose)

    async def action(token: Token, ledger: QueuedLedger) -> int:
        version = await _manager(token, ledger, settings).create(name, algorithm, purpose)
        print(f"created signing key {_describe(version)}")
        return 0

    return _with_token(settings, action)


def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Rotate a named key."""
    name = check_key_name(args.name)  # before the token is opened

    async def action(token: Token, ledger: QueuedLedger) -> int:
        version = await _manager(token, ledger, settings).rotate(name)
        print(f"rotated to {_describe(version)}")
        print("earlier versions are retired: they no longer sign but still verify")
        return 0

    return _with_token(settings, action)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every named key and version."""

    async def main() -> int:
        async with node_database(settings):
            keys = await all_keys()
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "name": k.name,
                            "algorithm": k.algorithm.value,
                            "purpose": k.purpose,
                            "status": k.status,
                            "versions": [
                                {
                                    "version": v.version,
                                    "status": v.status,
                                    "label": v.label,
                                    "certificate_sha256": v.certificate_sha256,
                                }
                                for v in k.versions
                            ],
                        }
                        for k in keys
                    ],
                    indent=2,
                )
            )
            return 0
        print(f"{'NAME':<20} {'ALGORITHM':<9} {'PURPOSE':<9} {'VERSION':>7} {'STATUS':<8} LABEL")
        for key in keys:
            for v in key.versions:
                print(
                    f"{key.name:<20} {key.algorithm.value:<9} {key.purpose:<9} {v.version:>7} "
                    f"{v.status:<8} {v.label}"
                )
        return 0

    return run_async(main())
