"""``sekisho hsm status`` and ``sekisho hsm keys``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.config import Settings
from gateway.node_token import open_node_token_sync, token_uses
from hsm import TokenProfile, TokenStatus


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
    """Print module, token and mechanism details of each token, and which keys live there."""
    token = open_node_token_sync(settings)
    shown: list[tuple[TokenStatus, TokenProfile, list[str]]] = []
    try:
        for member in token.members():
            shown.append((member.status_sync(), member.profile_sync(), token_uses(token, member)))
    finally:
        token.close_sync()
    if args.json:
        views = [
            {**status.__dict__, "profile": profile.as_dicts(), "keys": uses}
            for status, profile, uses in shown
        ]
        # One token: the object as before; several: a list, the default token first.
        print(json.dumps(views[0] if len(views) == 1 else views, indent=2))
        return 0
    for number, (status, profile, uses) in enumerate(shown):
        if number:
            print()
            print("-" * 72)
        print(f"module:        {status.module_path}")
        print(f"library:       {status.library} {status.library_version}")
        print(f"token:         {status.token_label} (serial {status.serial})")
        print(f"manufacturer:  {status.manufacturer}, model {status.model}")
        if len(shown) > 1:
            print(f"holds:         {', '.join(uses)}")
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
    """Print each key object with label, id, type and its sensitive/extractable attributes.

    With keys on several tokens each key also names its token (label) in a TOKEN column.
    """
    token = open_node_token_sync(settings)
    try:
        members = token.members()
        keys = [
            (member.config.token_label or member.config.token_serial or "", key)
            for member in members
            for key in member.list_keys_sync()
        ]
    finally:
        token.close_sync()
    several = len(members) > 1
    if args.json:
        views = [key.as_dict() | ({"token_label": name} if several else {}) for name, key in keys]
        print(json.dumps(views, indent=2))
        return 0
    column = "TOKEN".ljust(16) + " " if several else ""
    print(f"{column}{'LABEL':<20} {'CLASS':<8} {'TYPE':<11} {'ID':<17} SENSITIVE EXTRACTABLE")
    for name, key in keys:
        prefix = f"{name:<16} " if several else ""
        print(
            f"{prefix}{key.label:<20} {key.object_class:<8} {key.key_type:<11} {key.key_id:<17} "
            f"{_flag(key.sensitive):<9} {_flag(key.extractable)}"
        )
    return 0


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")
