"""``sekisho hsm status`` and ``sekisho hsm keys``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.config import Settings
from gateway.node_token import token_config
from hsm import Token, TokenProfile


def register(commands: Any) -> None:
    """Add the hsm sub-commands."""
    hsm = commands.add_parser("hsm", help="inspect the PKCS#11 token")
    sub = hsm.add_subparsers(dest="hsm_command", metavar="SUBCOMMAND", required=True)
    status = sub.add_parser("status", help="module, token, capability profile and mechanisms")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=run_status)
    keys = sub.add_parser("keys", help="every key with its protection attributes")
    keys.add_argument("--json", action="store_true", help="machine-readable output")
    keys.set_defaults(handler=run_keys)


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print module, token and mechanism details."""
    token = Token.open_sync(token_config(settings))
    try:
        status = token.status_sync()
        profile = token.profile_sync()
    finally:
        token.close_sync()
    if args.json:
        print(json.dumps({**status.__dict__, "profile": profile.as_dicts()}, indent=2))
        return 0
    print(f"module:        {status.module_path}")
    print(f"library:       {status.library} {status.library_version}")
    print(f"token:         {status.token_label} (serial {status.serial})")
    print(f"manufacturer:  {status.manufacturer}, model {status.model}")
    print()
    print(profile_table(profile))
    print()
    print(f"mechanisms:    {len(status.mechanisms)}")
    for mechanism in status.mechanisms:
        print(f"  {mechanism}")
    return 0


def profile_table(profile: TokenProfile) -> str:
    """Function, mechanism chosen, alternatives; or why the function is not possible."""
    width = max(len(c.function.value) for c in profile.choices)
    lines = [f"{'FUNCTION':<{width}}  MECHANISM (alternatives)"]
    for choice in profile.choices:
        if choice.chosen is None:
            text = f"not possible on this token: {choice.reason}"
        else:
            text = f"{choice.chosen.mechanism} ({choice.chosen.name})"
            if choice.alternatives:
                others = ", ".join(o.describe() for o in choice.alternatives)
                text += f"; alternatives: {others}"
        lines.append(f"{choice.function.value:<{width}}  {text}")
    return "\n".join(lines)


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Print each key object with label, id, type and its sensitive/extractable attributes."""
    token = Token.open_sync(token_config(settings))
    try:
        keys = token.list_keys_sync()
    finally:
        token.close_sync()
    if args.json:
        print(json.dumps([k.as_dict() for k in keys], indent=2))
        return 0
    print(f"{'LABEL':<20} {'CLASS':<8} {'TYPE':<11} {'ID':<17} SENSITIVE EXTRACTABLE")
    for key in keys:
        print(
            f"{key.label:<20} {key.object_class:<8} {key.key_type:<11} {key.key_id:<17} "
            f"{_flag(key.sensitive):<9} {_flag(key.extractable)}"
        )
    return 0


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
