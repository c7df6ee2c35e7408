"""``sekisho ledger verify|checkpoint`` and ``sekisho verify RECEIPT``.

``ledger verify`` also lists every recent anchoring at an external TSA
(gateway/anchoring/) and whether its token and its checkpoint still hold: locally
from the database, with ``--url`` from the node's public anchoring list, checked
here (gateway/anchoring/remote.py).

``ledger verify`` audits the local database (log key read from the token)
or, with ``--url``, a running node through its tlog-tiles resources. Remote
verification is only as good as the key it checks against: pin it with
``--key``; without one the key the node itself serves is used, with a
warning, which proves consistency but not authenticity. Entries are not
public: the remote check sends a reader's bearer token from ``--token-file``
or ``SEKISHO_LEDGER_TOKEN`` (never from the command line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.anchoring.checks import AnchorCheck, LogIdentity
from gateway.anchoring.remote import check_remote_anchors, listed_anchors
from gateway.anchoring.wiring import trusted_tsas
from gateway.cli import anchor_cmd, rollback_cmd
from gateway.cli.inputs import bounded_int, check_origin, one_line
from gateway.cli.offline import run_async
from gateway.cli.progress import ProgressBar
from gateway.cli.wording import count_of
from gateway.config import Settings
from gateway.db.setup import close_database, open_database
from gateway.errors import BadRequest, Unavailable
from gateway.ledger.audit.openings import check_openings
from gateway.ledger.audit.sources import DatabaseAuditSource, TileAuditSource
from gateway.ledger.audit.verify import AuditResult, LogKey, audit
from gateway.ledger.checkpoint_signer import CheckpointSigner
from gateway.ledger.client import ledger_client
from gateway.ledger.commitments import OpeningError, check_opening, decode_opening
from gateway.ledger.entries import EntryError, parse_entry
from gateway.ledger.reader_token import reader_token
from gateway.ledger.store import TortoiseLedgerStore
from gateway.node_token import open_node_token
from gateway.tlog.checkpoint import open_signed_checkpoint
from gateway.tlog.merkle import Frontier, ProofError, root_from_inclusion_proof
from gateway.tlog.note import SIG_ED25519_COSIGNATURE, NoteError, parse_verifier_key
from gateway.tlog.receipt import LeafHash, parse_receipt, verify_receipt
from hsm import Token

_MAX_FILE = 4 << 20
TOKEN_ENV = "SEKISHO_LEDGER_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_TOKEN_HINT = (
    f"give an officer's, auditor's or ledger-read client's token in {TOKEN_ENV} or --token-file"
)


def register(commands: Any) -> None:
    """Add ``ledger verify``, ``ledger checkpoint`` and ``verify``."""
    ledger = commands.add_parser("ledger", help="inspect and verify the tamper-evident ledger")
    sub = ledger.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND", required=True)
    verify = sub.add_parser(
        "verify", help="recompute every hash and check every checkpoint signature"
    )
    verify.add_argument(
        "--url", help="verify a running node (its /ledger/ tlog-tiles) instead of the database"
    )
    verify.add_argument(
        "--key",
        metavar="VKEY_OR_FILE",
        help="the log's verifier key, or a file holding it (default: the token's key locally; "
        "with --url, the key the node serves, which only a pinned --key makes trustworthy)",
    )
    verify.add_argument("--origin", help="expected checkpoint origin (default: the key name)")
    verify.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"with --url: a file holding the bearer token that may read entries "
        f"(default: ${TOKEN_ENV})",
    )
    verify.set_defaults(handler=run_ledger_verify)
    checkpoint = sub.add_parser("checkpoint", help="print the latest signed checkpoint")
    checkpoint.add_argument("--url", help="read it from a running node instead")
    checkpoint.set_defaults(handler=run_ledger_checkpoint)
    rollback_cmd.register(sub)
    anchor_cmd.register(sub)

    receipt = commands.add_parser(
        "verify", help="verify a ledger receipt (c2sp.org/tlog-proof) offline"
    )
    receipt.add_argument("receipt", metavar="RECEIPT_FILE", help="the receipt ('-' for stdin)")
    receipt.add_argument(
        "--key", required=True, metavar="VKEY_OR_FILE", help="the log's verifier key or its file"
    )
    what = receipt.add_mutually_exclusive_group()
    what.add_argument("--entry", metavar="FILE", help="the entry bytes the receipt is for")
    what.add_argument("--leaf-hash", metavar="HEX", help="or the entry's RFC 6962 leaf hash")
    receipt.add_argument("--origin", help="expected checkpoint origin (default: the key name)")
    receipt.add_argument(
        "--opening",
        metavar="FILE",
        help="with --entry: the entry's opening (JSON, whole or partial): check every opened "
        "field against its commitment and print the fields",
    )
    receipt.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's cosigner key (type 0x04); repeat for each witness",
    )
    receipt.add_argument(
        "--quorum",
        type=bounded_int(0, 1000),
        default=0,
        help="how many --witness cosignatures must verify",
    )
    receipt.set_defaults(handler=run_receipt_verify)


# --- inputs ------------------------------------------------------------------------


def _read_file(name: str, what: str) -> bytes:
    if name == "-":
        data = sys.stdin.buffer.read(_MAX_FILE + 1)
        if len(data) > _MAX_FILE:
            raise BadRequest(f"the {what} on standard input is larger than {_MAX_FILE} bytes")
        return data
    path = Path(name)
    if not path.is_file():
        raise BadRequest(f"{what} file {name} does not exist")
    if path.stat().st_size > _MAX_FILE:
        raise BadRequest(f"{what} file {name} is larger than {_MAX_FILE} bytes")
    return path.read_bytes()


def read_key(value: str, origin: str | None = None) -> LogKey:
    """A verifier key given inline (``name+id+base64``) or as a file holding one."""
    if os.path.isfile(value):
        text = _read_file(value, "key").decode("utf-8", errors="replace").strip()
    elif "+" not in value:
        raise BadRequest(f"{value!r} is neither a key file nor a verifier key (name+id+key)")
    else:
        text = value
    return LogKey.from_vkey(text, origin)


# --- ledger verify ---------------------------------------------------------------------


def run_ledger_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Audit the ledger and its anchorings; exit 0 when intact, 1 with the problems otherwise."""
    check_origin(args.origin)
    if args.token_file is not None and args.url is None:
        raise BadRequest("--token-file is for verifying a running node: give --url too")
    # the inputs before the token or the network: a bad --key is one line, whatever else
    pinned = read_key(args.key, args.origin) if args.key is not None else None
    bar = ProgressBar(sys.stderr, "verifying ledger")
    rollback: str | None = None
    anchors: list[AnchorCheck] = []
    try:
        if args.url is not None:
            result, anchors = run_async(_verify_remote(args, settings, bar, pinned))
        else:
            _require_database(settings)
            result, rollback, anchors = run_async(_verify_local(args, settings, bar, pinned))
    finally:
        bar.close()
    for check in anchors:
        print(anchor_cmd.check_line(check))
    if result.finding is not None:
        print(f"ledger TAMPERED: {result.finding.message}")
        return 1
    if rollback is not None:
        print(f"ledger TAMPERED: {rollback}")
        return 1
    state = result.state
    entries = count_of(state.size, "entry", "entries")
    print(f"ledger OK: {entries}, {count_of(state.checkpoints, 'checkpoint')} verified")
    failing = [c for c in anchors if not c.ok]
    if failing:
        print(f"anchorings NOT OK: {len(failing)} of {count_of(len(anchors), 'anchoring')} fail")
        return 1
    if anchors:
        print(f"anchorings OK: {count_of(len(anchors), 'anchoring')} verified")
    return 0


async def _token_key(token: Token, settings: Settings, origin: str | None) -> LogKey:
    """The token's log key; checkpoints must name ``origin`` (default: the node's)."""
    signer = await CheckpointSigner.create(token, settings.keys.ledger, settings.ledger_origin)
    return LogKey(signer.origin, signer.public_key, origin or signer.origin)


def _require_database(settings: Settings) -> None:
    """Refuse to create an empty SQLite file where the node's database should be."""
    url = settings.database_url
    if url.startswith("sqlite://") and not os.path.isfile(url.removeprefix("sqlite://")):
        raise Unavailable(f"no database at {url.removeprefix('sqlite://')}: run 'sekisho init'")


async def _verify_local(
    args: argparse.Namespace, settings: Settings, bar: ProgressBar, pinned: LogKey | None
) -> tuple[AuditResult, str | None, list[AnchorCheck]]:
    """The audit, why the database contradicts the token's kept checkpoint (or None), and
    every recent anchoring re-checked."""
    token = await open_node_token(settings)
    try:
        key = pinned or await _token_key(token, settings, args.origin)
        await open_database(settings.database_url)
        try:
            result = await audit(DatabaseAuditSource(), key, progress=bar.update)
            if result.finding is None:  # the tree holds: now every opening against its leaf
                store = TortoiseLedgerStore()
                finding = await check_openings(store, result.state.size, bar.update)
                result = replace(result, finding=finding)
            anchors = await anchor_cmd.anchor_checks(settings, key)
            rollback = await rollback_cmd.kept_checkpoint_finding(token, settings)
            return result, rollback, anchors
        finally:
            await close_database()
    finally:
        await token.close()


async def _verify_remote(
    args: argparse.Namespace, settings: Settings, bar: ProgressBar, pinned: LogKey | None
) -> tuple[AuditResult, list[AnchorCheck]]:
    """The audit through the node's tiles, and every anchoring it lists re-checked here
    (tokens against the TSAs configured here, roots against the audited tree)."""
    token = reader_token(args.token_file, TOKEN_ENV)
    async with ledger_client(args.url, token=token, hint=_TOKEN_HINT) as client:
        if pinned is not None:
            key = pinned
        else:
            served = await client.key()
            key = LogKey.from_vkey(str(served["vkey"]), args.origin or served.get("origin"))
            print(
                f"sekisho: warning: no --key given; checking against the key the node serves "
                f"({served['vkey']}). Pin it with --key to detect a substituted log.",
                file=sys.stderr,
            )
        listed = await listed_anchors(client)
        result = await audit(TileAuditSource(client), key, progress=bar.update)
        if result.finding is not None or not listed:
            return result, []
        state = result.state
        identity = LogIdentity(key.origin, key.name, key.public_key)
        root = Frontier(state.size, state.frontier).root()
        tsas = trusted_tsas(settings)
        return result, await check_remote_anchors(client, listed, tsas, identity, state.size, root)


# --- ledger checkpoint -----------------------------------------------------------------


def run_ledger_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    """Print the latest signed checkpoint note."""
    if args.url is None:
        _require_database(settings)
    sys.stdout.write(run_async(_latest_note(args, settings)))
    return 0


async def _latest_note(args: argparse.Namespace, settings: Settings) -> str:
    if args.url is not None:
        async with ledger_client(args.url) as client:
            data = await client.fetch("checkpoint")
        if data is None:
            raise Unavailable(f"{args.url} serves no ledger checkpoint")
        return data.decode("utf-8", errors="replace")
    await open_database(settings.database_url)
    try:
        latest = await DatabaseAuditSource().latest_checkpoint()
    finally:
        await close_database()
    if latest is None:
        raise Unavailable("the ledger has no checkpoint yet")
    return latest.note


# --- verify RECEIPT ----------------------------------------------------------------------


def _witness_key(vkey: str) -> tuple[str, bytes]:
    name, _, public_key = parse_verifier_key(vkey.strip(), sig_type=SIG_ED25519_COSIGNATURE)
    return name, public_key


def run_receipt_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify a receipt offline: log signature, then inclusion of the entry if given."""
    del settings
    check_origin(args.origin)
    receipt = parse_receipt(_read_file(args.receipt, "receipt"))
    key = read_key(args.key, args.origin)
    leaf: bytes | LeafHash | None = None
    if args.entry is not None:  # given but empty is a missing file, not "no entry"
        leaf = _read_file(args.entry, "entry")
    elif args.leaf_hash is not None:
        try:
            leaf = LeafHash(bytes.fromhex(args.leaf_hash))
        except ValueError:
            raise BadRequest("--leaf-hash must be 64 hexadecimal digits") from None
    witnesses = [_witness_key(vkey) for vkey in args.witness]
    if args.quorum and leaf is None:
        raise BadRequest("--quorum needs the entry: give --entry or --leaf-hash")
    if args.opening is not None and args.entry is None:
        raise BadRequest("--opening needs the entry: give --entry")
    try:
        if leaf is None:
            checkpoint, _ = open_signed_checkpoint(
                receipt.checkpoint_note, key.origin, key.name, key.public_key
            )
            # The proof must at least have the right shape for this index and size.
            root_from_inclusion_proof(bytes(32), receipt.index, checkpoint.size, receipt.proof)
        else:
            checkpoint = verify_receipt(
                receipt,
                leaf,
                key.name,
                key.public_key,
                key.origin,
                witnesses=witnesses,
                quorum=args.quorum,
            )
    except (NoteError, ProofError) as exc:
        print(f"receipt INVALID: {exc.message}")
        return 1
    where = f"entry {receipt.index} of {checkpoint.origin} (tree size {checkpoint.size})"
    if leaf is None:
        print(f"receipt signature OK: {where}; the entry itself was not checked (give --entry)")
        return 0
    opened = ""
    if args.opening is not None:
        assert isinstance(leaf, bytes)
        try:
            fields = check_opening(
                parse_entry(leaf), decode_opening(_read_file(args.opening, "opening"))
            )
        except (OpeningError, EntryError, ValueError, RecursionError) as exc:
            # ValueError: a number too long to convert; RecursionError: nested too deeply
            reason = getattr(exc, "message", None) or f"not an opening: {exc}"
            print(f"receipt INVALID: the opening: {one_line(reason)}")
            return 1
        shown = ", ".join(
            f"{k}={json.dumps(v)}" for k, v in sorted(fields.items()) if v is not None
        )
        opened = f"; opened: {shown}"
    quorum = count_of(args.quorum or 0, "witness", "witnesses")
    cosigned = f", cosigned by a quorum of {quorum}" if args.quorum else ""
    print(f"receipt OK: {where} is signed by the log{cosigned} and includes the entry{opened}")
    return 0
