"""``sekisho witness init|add-log|remove-log|status|verify-mirror|resume-mirror|serve``.

A witness is the same program run as a separate process with its own data
directory, token, cosigning key and database.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.cli.inputs import PORT, check_url
from gateway.cli.offline import run_async
from gateway.cli.progress import ProgressBar
from gateway.cli.supervisor import listening_socket
from gateway.cli.wording import count_of
from gateway.config import Settings
from gateway.errors import NotFound
from gateway.http.tls import server_ssl_context
from gateway.ledger.audit.verify import AuditResult, LogKey, audit
from gateway.ledger.reader_token import read_token_file
from gateway.logs import configure_logging
from gateway.witness.app import build_witness_app
from gateway.witness.bootstrap import WitnessInit, initialise_witness, witness_database
from gateway.witness.mirror_store import MirrorStore
from gateway.witness.models import WitnessedLog
from gateway.witness.status import witness_status
from gateway.witness.store import WitnessStore, log_record


def register(commands: Any) -> None:
    """Add ``witness`` and its sub-commands."""
    witness = commands.add_parser(
        "witness", help="run a witness node: cosign checkpoints of other logs (tlog-witness)"
    )
    sub = witness.add_subparsers(dest="witness_command", metavar="SUBCOMMAND", required=True)
    init = sub.add_parser("init", help="create the data dir, token, cosigning key and database")
    init.set_defaults(handler=run_init)
    add = sub.add_parser("add-log", help="witness a log: its origin and verifier key (type 0x01)")
    add.add_argument("origin", help="the log's checkpoint origin line")
    add.add_argument("vkey", help="the log's note verifier key (name+keyid+base64)")
    add.add_argument("--url", default="", help="the log's base URL (its tiles are at URL/ledger/)")
    add.add_argument("--mirror", action="store_true", help="also pull and keep every entry")
    add.add_argument(
        "--token-file",
        metavar="FILE",
        help="mirror: a file holding the bearer token of a ledger-read client of the log "
        "(the path is stored and read at each step; default: $SEKISHO_WITNESS_MIRROR_TOKEN)",
    )
    add.set_defaults(handler=run_add_log)
    remove = sub.add_parser("remove-log", help="stop witnessing a log (evidence is kept)")
    remove.add_argument("origin")
    remove.set_defaults(handler=run_remove_log)
    status = sub.add_parser("status", help="logs, cosigned sizes, mirrors and evidence")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=run_status)
    verify = sub.add_parser(
        "verify-mirror", help="recompute a mirrored log from the stored entries; exit 1 if changed"
    )
    verify.add_argument("origin")
    verify.set_defaults(handler=run_verify_mirror)
    resume = sub.add_parser(
        "resume-mirror",
        help="drop mirrored entries no verified checkpoint covers and resume a halted mirror",
    )
    resume.add_argument("origin")
    resume.set_defaults(handler=run_resume_mirror)
    serve = sub.add_parser("serve", help="run the witness (runs init first if needed)")
    serve.add_argument("--host", help="listen address (default: http.host)")
    serve.add_argument("--port", type=PORT, help="listen port (default: http.port)")
    serve.set_defaults(handler=run_serve)


def _print_init(report: WitnessInit) -> None:
    for line in report.created:
        print(f"created: {line}")
    if not report.created:
        print("sekisho witness: already initialised; nothing changed")
    print(f"witness name: {report.name}")
    print(f"witness vkey: {report.vkey}")


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    """Initialise the witness and print its verifier key."""
    del args
    _print_init(run_async(initialise_witness(settings)))
    return 0


def _token_file(value: str | None) -> str | None:
    """The absolute path of a token file that holds a token now ("" forgets it)."""
    if not value:
        return value
    read_token_file(value)
    return str(Path(value).resolve())


def run_add_log(args: argparse.Namespace, settings: Settings) -> int:
    """Add a log (or change its URL, mirroring and token file)."""
    token_file = _token_file(args.token_file)
    if args.url:
        check_url(args.url, "--url")

    async def add() -> bool:
        async with witness_database(settings):
            return await WitnessStore().add_log(
                args.origin,
                args.vkey.strip(),
                args.url,
                mirror=args.mirror,
                token_file=token_file,
            )

    created = run_async(add())
    mode = "witnessing and mirroring" if args.mirror else "witnessing"
    print(f"{'added' if created else 'updated'}: {mode} {args.origin}")
    return 0


def run_remove_log(args: argparse.Namespace, settings: Settings) -> int:
    """Remove a log."""

    async def remove() -> bool:
        async with witness_database(settings):
            return await WitnessStore().remove_log(args.origin)

    if not run_async(remove()):
        raise NotFound(f"this witness does not witness {args.origin!r}")
    print(f"removed: {args.origin}")
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the witness status (the JSON of GET /status with --json)."""

    async def load() -> dict[str, Any]:
        async with witness_database(settings):
            return await witness_status(WitnessStore(), settings.witness_name, "")

    view = run_async(load())
    if args.json:
        print(json.dumps(view, indent=2))
        return 0
    print(f"witness {view['name']}: {'ALARM' if view['alarm'] else 'no alarm'}")
    for log in view["logs"]:
        mirror = log.get("mirror")
        extra = f", mirror at {mirror['size']}" if mirror else ""
        if mirror and (mirror["error"] or mirror["halted"]):
            extra += f" ({'halted: ' if mirror['halted'] else ''}{mirror['error']})"
        print(f"  {log['origin']}: cosigned size {log['size']}{extra}")
    for kind, count in view["evidence_counts"].items():
        print(f"  evidence {kind}: {count}")
    return 1 if view["alarm"] else 0


async def _mirrored(origin: str) -> WitnessedLog:
    row = await WitnessedLog.get_or_none(origin=origin)
    if row is None or not row.mirror:
        raise NotFound(f"this witness does not mirror {origin!r}")
    return row


def run_verify_mirror(args: argparse.Namespace, settings: Settings) -> int:
    """Audit a mirrored copy: every entry rehashed, every subtree and checkpoint checked."""
    bar = ProgressBar(sys.stderr, "verifying mirror")

    async def verify() -> AuditResult:
        async with witness_database(settings):
            record = log_record(await _mirrored(args.origin))
            key = LogKey(record.key_name, record.public_key, record.origin)
            return await audit(MirrorStore(record.log_id), key, progress=bar.update)

    try:
        result = run_async(verify())
    finally:
        bar.close()
    if result.finding is not None:
        print(f"mirror TAMPERED: {result.finding.message}")
        return 1
    state = result.state
    entries = count_of(state.size, "entry", "entries")
    print(f"mirror OK: {entries}, {count_of(state.checkpoints, 'checkpoint')} verified")
    return 0


def run_resume_mirror(args: argparse.Namespace, settings: Settings) -> int:
    """Drop unverified mirrored entries and clear the halt."""

    async def resume() -> int:
        async with witness_database(settings):
            row = await _mirrored(args.origin)
            store = MirrorStore(row.id)
            latest = await store.latest_checkpoint()
            size = latest.size if latest else 0
            await store.truncate(size)
            await WitnessedLog.filter(id=row.id).update(
                mirror_halted=False, mirror_error=None, mirror_size=size
            )
            return size

    size = run_async(resume())
    print(f"mirror of {args.origin} resumes from its verified size {size}")
    return 0


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Initialise if needed, then serve add-checkpoint, status, metrics and mirrors."""
    ssl_context = server_ssl_context(settings.http)
    host = args.host or settings.http.host
    port = args.port if args.port is not None else settings.http.port
    # the port first: a bad address or a port in use is one line before init does anything
    sock = listening_socket(host, port)
    report = run_async(initialise_witness(settings))
    if report.created:
        _print_init(report)
    configure_logging(settings.node.log_level)
    app = build_witness_app(settings)
    scheme = "https" if ssl_context else "http"
    print(
        f"sekisho witness: serving on {scheme}://{host}:{port}/  (name {report.name}, "
        f"data: {settings.data_dir})",
        flush=True,
    )
    print(f"witness vkey: {report.vkey}", flush=True)
    web.run_app(app, sock=sock, ssl_context=ssl_context, print=None, access_log=None)
    return 0
