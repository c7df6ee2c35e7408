"""``sekisho init`` and ``sekisho serve``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiohttp import web

from gateway.app import build_app
from gateway.bootstrap import InitReport, initialise
from gateway.config import Settings
from gateway.http.tls import server_ssl_context
from gateway.logs import configure_logging


def register(commands: Any) -> None:
    """Add the init and serve sub-commands."""
    init = commands.add_parser("init", help="create the data directory, token, keys and schema")
    init.add_argument("--demo", action="store_true", help="also create demo accounts")
    init.set_defaults(handler=run_init)
    serve = commands.add_parser("serve", help="run the gateway (runs init first if needed)")
    serve.add_argument("--host", help="listen address (default: http.host)")
    serve.add_argument("--port", type=int, help="listen port (default: http.port)")
    serve.add_argument("--demo", action="store_true", help="create demo accounts on first start")
    serve.set_defaults(handler=run_serve)


def print_report(report: InitReport) -> None:
    """Say what init created, and show one-time passwords once."""
    if not report.changed:
        print("sekisho: already initialised; nothing changed")
        return
    for line in report.created:
        print(f"created: {line}")
    for username, password in report.passwords.items():
        print(f"one-time password for {username!r}: {password}  (shown once; change it)")


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    """Initialise the node and print what changed."""
    print_report(asyncio.run(initialise(settings, demo=args.demo)))
    return 0


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Initialise if needed, then serve until interrupted."""
    ssl_context = server_ssl_context(settings.http)  # a bad TLS setting stops us before init
    report = asyncio.run(initialise(settings, demo=args.demo))
    if report.changed:
        print_report(report)
    host = args.host or settings.http.host
    port = args.port or settings.http.port
    configure_logging(settings.node.log_level)
    app = build_app(settings)
    scheme = "https" if ssl_context else "http"
    print(f"sekisho: serving on {scheme}://{host}:{port}/  (data: {settings.data_dir})", flush=True)
    web.run_app(app, host=host, port=port, ssl_context=ssl_context, print=None, access_log=None)
    return 0
