"""``sekisho clients``: API clients of the signing API (scopes, keys, rate, tokens)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.accounts.rules import check_token_label
from gateway.auth.identity import CLIENT_SCOPES
from gateway.auth.principals import ApiClient
from gateway.cli.inputs import bounded_int
from gateway.cli.offline import SOURCE, node_database, operator_actor, run_async
from gateway.config import Settings
from gateway.errors import BadRequest
from gateway.signing.clients import (
    MAX_RATE,
    ClientService,
    ClientSpec,
    certificate_fingerprint,
    split_names,
)

Action = Callable[[ClientService], Awaitable[int]]
_MAX_CERT_FILE = 1 << 20


def register(commands: Any) -> None:
    """Add the clients sub-commands."""
    clients = commands.add_parser("clients", help="API clients of the signing API")
    sub = clients.add_subparsers(dest="clients_command", metavar="SUBCOMMAND", required=True)

    add = sub.add_parser("add", help="register a client; prints its bearer token once")
    add.add_argument("name")
    _spec_options(add, required=True)
    add.set_defaults(handler=run_add)

    change = sub.add_parser("set", help="change a client's scopes, keys, rate or certificate")
    change.add_argument("name")
    _spec_options(change, required=False)
    change.set_defaults(handler=run_set)

    listing = sub.add_parser("list", help="every client, with token prefixes")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_list)

    revoke = sub.add_parser("revoke", help="revoke a client and all its tokens")
    revoke.add_argument("name")
    revoke.set_defaults(handler=run_revoke)

    token = sub.add_parser("token", help="issue another bearer token (shown once)")
    token.add_argument("name")
    token.add_argument("--label", default="", help="what the token is for")
    token.set_defaults(handler=run_token)

    untoken = sub.add_parser("revoke-token", help="revoke one token by its prefix")
    untoken.add_argument("name")
    untoken.add_argument("prefix", help="the token prefix 'clients list' shows")
    untoken.set_defaults(handler=run_revoke_token)


def _spec_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--scopes", required=required, help=f"comma-separated: {','.join(CLIENT_SCOPES)}"
    )
    parser.add_argument(
        "--keys", nargs="+", metavar="KEY", help="key names the client may use (sign/verify/cms)"
    )
    parser.add_argument(
        "--rate",
        type=bounded_int(0, MAX_RATE),
        help="requests per minute (0: unlimited; default 600)",
    )
    parser.add_argument(
        "--chain-writers",
        metavar="NAMES",
        help="comma-separated clients that may read and extend this client's custody chains "
        "(anchors); '' for none",
    )
    cert = parser.add_mutually_exclusive_group()
    cert.add_argument("--cert", metavar="FILE", help="TLS client certificate (PEM or DER)")
    cert.add_argument("--cert-sha256", metavar="HEX", help="or its SHA-256 fingerprint")
    if not required:
        cert.add_argument("--no-cert", action="store_true", help="remove the client certificate")


def _spec(args: argparse.Namespace) -> ClientSpec:
    fingerprint: str | None = args.cert_sha256
    if args.cert:
        path = Path(args.cert)
        if not path.is_file() or path.stat().st_size > _MAX_CERT_FILE:
            raise BadRequest(f"{args.cert} is not a certificate file")
        fingerprint = certificate_fingerprint(path.read_bytes())
    if getattr(args, "no_cert", False):
        fingerprint = ""
    return ClientSpec(
        scopes=split_names([args.scopes]) if args.scopes is not None else None,
        keys=split_names(args.keys) if args.keys is not None else None,
        rate_per_minute=args.rate,
        cert_fingerprint=fingerprint,
        chain_writers=(
            split_names([args.chain_writers]) if args.chain_writers is not None else None
        ),
    )


def _run(settings: Settings, action: Action) -> int:
    async def main() -> int:
        async with node_database(settings) as ledger:
            return await action(ClientService(ledger, actor=operator_actor(), source=SOURCE))

    return run_async(main())


def _describe(client: ApiClient) -> str:
    rate = client.rate_per_minute
    limit = "unlimited" if rate == 0 else f"{rate} requests/minute"
    described = f"scopes: {','.join(client.scopes)}; keys: {','.join(client.keys) or '-'}; {limit}"
    if client.chain_writers:
        described += f"; chain writers: {','.join(client.chain_writers)}"
    return described


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    """Create a client and print its token once."""
    spec = _spec(args)

    async def action(service: ClientService) -> int:
        client, token = await service.add(args.name, spec)
        print(f"created API client {client.name!r} ({_describe(client)})")
        if client.cert_fingerprint:
            print(f"client certificate SHA-256: {client.cert_fingerprint}")
        print(f"bearer token (shown once; store it now): {token}")
        return 0

    return _run(settings, action)


def run_set(args: argparse.Namespace, settings: Settings) -> int:
    """Change a client and say what changed."""
    spec = _spec(args)

    async def action(service: ClientService) -> int:
        client, changed = await service.update(args.name, spec)
        if not changed:
            print(f"client {client.name!r}: nothing changed")
            return 0
        print(f"client {client.name!r}: changed {', '.join(changed)} ({_describe(client)})")
        return 0

    return _run(settings, action)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every client."""

    async def action(service: ClientService) -> int:
        views = await service.all()
        if args.json:
            print(json.dumps([v.as_dict() for v in views], indent=2))
            return 0
        print(f"{'NAME':<20} {'STATUS':<8} {'RATE':>6}  {'SCOPES':<32} {'KEYS':<24} TOKENS")
        for view in views:
            c = view.client
            status = "revoked" if c.revoked else "active"
            print(
                f"{c.name:<20} {status:<8} {c.rate_per_minute:>6}  {','.join(c.scopes):<32} "
                f"{','.join(c.keys) or '-':<24} {','.join(view.live_tokens) or '-'}"
            )
        return 0

    return _run(settings, action)


def run_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a client."""

    async def action(service: ClientService) -> int:
        if await service.revoke(args.name):
            print(f"revoked API client {args.name!r} and all its tokens")
        else:
            print(f"API client {args.name!r} was already revoked")
        return 0

    return _run(settings, action)


def run_token(args: argparse.Namespace, settings: Settings) -> int:
    """Issue another token."""
    label = check_token_label(args.label)  # as for people's tokens: not cut short silently

    async def action(service: ClientService) -> int:
        token = await service.issue_token(args.name, label)
        print(f"bearer token for {args.name!r} (shown once; store it now): {token}")
        return 0

    return _run(settings, action)


def run_revoke_token(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke one token."""

    async def action(service: ClientService) -> int:
        if await service.revoke_token(args.name, args.prefix):
            print(f"revoked token {args.prefix} of {args.name!r}")
        else:
            print(f"token {args.prefix} of {args.name!r} was already revoked")
        return 0

    return _run(settings, action)
