"""``sekisho users``: accounts, clearance, roles and personal API tokens."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.accounts.rules import split_list
from gateway.accounts.service import (
    AccountChanges,
    AccountService,
    Actor,
    NewAccount,
    account_view,
    token_view,
)
from gateway.auth.identity import PERSON_ROLES
from gateway.auth.principals import Principal
from gateway.cli.offline import SOURCE, node_database, operator_actor, run_async
from gateway.config import Settings
from gateway.policy.pdp import decision_point

Action = Callable[[AccountService, Actor], Awaitable[int]]


def register(commands: Any) -> None:
    """Add the users sub-commands."""
    users = commands.add_parser("users", help="people: clearance, roles, tokens")
    sub = users.add_subparsers(dest="users_command", metavar="SUBCOMMAND", required=True)

    add = sub.add_parser("add", help="create an account (prints a one-time password once)")
    add.add_argument("username")
    add.add_argument("--level", required=True, help="classification level, e.g. SECRET")
    _clearance_options(add)
    add.set_defaults(handler=run_add)

    change = sub.add_parser("set", help="change name, level, compartments, nationality, roles")
    change.add_argument("username")
    change.add_argument("--level", help="classification level")
    _clearance_options(change)
    change.set_defaults(handler=run_set)

    for name, text in (("disable", "disable an account"), ("enable", "enable an account")):
        parser = sub.add_parser(name, help=text)
        parser.add_argument("username")
        parser.set_defaults(handler=run_disable if name == "disable" else run_enable)

    unlock = sub.add_parser("unlock", help="end an account's sign-in lock-out now")
    unlock.add_argument("username")
    unlock.set_defaults(handler=run_unlock)

    listing = sub.add_parser("list", help="every account")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_list)

    token = sub.add_parser("token", help="issue a personal API token (shown once)")
    token.add_argument("username")
    token.add_argument("--label", default="", help="what the token is for")
    token.set_defaults(handler=run_token)

    tokens = sub.add_parser("tokens", help="a person's API tokens (prefixes only)")
    tokens.add_argument("username")
    tokens.add_argument("--json", action="store_true", help="machine-readable output")
    tokens.set_defaults(handler=run_tokens)

    revoke = sub.add_parser("revoke-token", help="revoke a personal API token")
    revoke.add_argument("prefix", help="the token's first 12 characters (or the whole token)")
    revoke.set_defaults(handler=run_revoke_token)


def _clearance_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compartments", help="comma-separated, e.g. LOGISTICS,ALPHA")
    parser.add_argument("--nationality", help="ISO 3166-1 alpha-3 code, e.g. USA")
    parser.add_argument("--roles", help=f"comma-separated subset of {','.join(PERSON_ROLES)}")
    parser.add_argument("--name", help="display name")


def _run(settings: Settings, action: Action) -> int:
    async def main() -> int:
        async with node_database(settings) as ledger:
            service = AccountService(ledger, decision_point(settings).scheme)
            return await action(service, Actor(operator_actor(), SOURCE))

    return run_async(main())


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(split_list(text))


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create an account and print its one-time password."""

    async def action(service: AccountService, actor: Actor) -> int:
        new = NewAccount(
            username=args.username,
            level=args.level,
            compartments=_names(args.compartments) or (),
            nationality=args.nationality or "",
            roles=_names(args.roles) or NewAccount.roles,
            display_name=args.name or "",
        )
        person, password = await service.create(new, actor)
        print(f"created user {person.username!r}: {_summary(person)}")
        print(f"one-time password for {person.username!r}: {password}  (shown once; change it)")
        return 0

    return _run(settings, action)


def run_set(args: argparse.Namespace, settings: Settings) -> int:
    """Change an account."""

    async def action(service: AccountService, actor: Actor) -> int:
        changes = AccountChanges(
            display_name=args.name,
            level=args.level,
            compartments=_names(args.compartments),
            nationality=args.nationality,
            roles=_names(args.roles),
        )
        person, changed = await service.update(args.username, changes, actor)
        if not changed:
            print(f"user {person.username!r}: nothing changed")
        else:
            print(f"updated user {person.username!r} ({', '.join(changed)}): {_summary(person)}")
        return 0

    return _run(settings, action)


def run_disable(args: argparse.Namespace, settings: Settings) -> int:
    """Disable an account."""
    return _run(settings, _toggle(args.username, disabled=True))


def run_enable(args: argparse.Namespace, settings: Settings) -> int:
    """Enable an account."""
    return _run(settings, _toggle(args.username, disabled=False))


def run_unlock(args: argparse.Namespace, settings: Settings) -> int:
    """End a sign-in lock-out."""

    async def action(service: AccountService, actor: Actor) -> int:
        _, changed = await service.unlock(args.username, actor)
        name = args.username
        print(f"user {name!r} unlocked" if changed else f"user {name!r} was not locked out")
        return 0

    return _run(settings, action)


def _toggle(username: str, *, disabled: bool) -> Action:
    async def action(service: AccountService, actor: Actor) -> int:
        _, changed = await service.set_disabled(username, disabled, actor)
        state = "disabled" if disabled else "enabled"
        print(f"user {username!r} {state}" if changed else f"user {username!r} was already {state}")
        return 0

    return action


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every account."""

    async def action(service: AccountService, actor: Actor) -> int:
        people = await service.list_accounts()
        if args.json:
            print(json.dumps([account_view(p) for p in people], indent=2))
            return 0
        print(f"{'USERNAME':<16} {'LEVEL':<13} {'NAT':<4} {'ROLES':<30} {'STATE':<9} COMPARTMENTS")
        for p in people:
            state = "disabled" if p.disabled else "enabled"
            print(
                f"{p.username:<16} {p.level:<13} {p.nationality or '-':<4} "
                f"{','.join(sorted(p.roles)):<30} {state:<9} {','.join(p.compartments) or '-'}"
            )
        return 0

    return _run(settings, action)


def run_token(args: argparse.Namespace, settings: Settings) -> int:
    """Issue a personal API token and print it once."""

    async def action(service: AccountService, actor: Actor) -> int:
        token, prefix = await service.issue_token(args.username, args.label, actor)
        print(f"API token for {args.username!r} (prefix {prefix}; shown once, store it now):")
        print(token)
        return 0

    return _run(settings, action)


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    """List a person's tokens by prefix."""

    async def action(service: AccountService, actor: Actor) -> int:
        rows = [token_view(row) for row in await service.tokens(args.username)]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'PREFIX':<13} {'STATE':<8} {'CREATED':<25} LABEL")
        for row in rows:
            state = "revoked" if row["revoked"] else "live"
            print(f"{row['prefix']!s:<13} {state:<8} {row['created_at']!s:<25} {row['label']}")
        return 0

    return _run(settings, action)


def run_revoke_token(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a personal token."""

    async def action(service: AccountService, actor: Actor) -> int:
        row, changed = await service.revoke_token(args.prefix, actor)
        owner = row.principal.username if row.principal else "?"
        if changed:
            print(f"revoked token {row.prefix} of {owner!r}")
        else:
            print(f"token {row.prefix} of {owner!r} was already revoked")
        return 0

    return _run(settings, action)


def _summary(person: Principal) -> str:
    parts = [person.level, f"roles {','.join(sorted(person.roles))}"]
    if person.compartments:
        parts.append(f"compartments {','.join(person.compartments)}")
    if person.nationality:
        parts.append(f"nationality {person.nationality}")
    return "; ".join(parts)
