"""``sekisho init`` and ``sekisho serve``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import sys
from dataclasses import replace
from typing import Any

from aiohttp import web

from gateway.app import build_app
from gateway.bootstrap import InitReport, initialise
from gateway.cli.inputs import PORT, bounded_int
from gateway.cli.offline import run_async
from gateway.cli.supervisor import READY, Supervisor, listening_socket, listening_sockets
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.http.tls import server_ssl_context
from gateway.logs import configure_logging

_FD = bounded_int(0, 2**31 - 1)


def register(commands: Any) -> None:
    """Add the init and serve sub-commands."""
    init = commands.add_parser("init", help="create the data directory, token, keys and schema")
    init.add_argument("--demo", action="store_true", help="also create demo accounts")
    init.set_defaults(handler=run_init)
    serve = commands.add_parser("serve", help="run the gateway (runs init first if needed)")
    serve.add_argument("--host", help="listen address (default: http.host)")
    serve.add_argument("--port", type=PORT, help="listen port (default: http.port)")
    serve.add_argument("--demo", action="store_true", help="create demo accounts on first start")
    serve.add_argument(
        "--workers",
        type=bounded_int(0, 256),
        help="worker processes on the one port (default: http.workers; 0 = one per core)",
    )
    # set by the supervisor for its workers, not by people
    serve.add_argument("--listen-fd", type=_FD, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=_FD, help=argparse.SUPPRESS)
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
    print_report(run_async(initialise(settings, demo=args.demo)))
    return 0


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Initialise if needed, bind the port, then serve (in N worker processes) until stopped."""
    ssl_context = server_ssl_context(settings.http)  # a bad TLS setting stops us before init
    configure_logging(settings.node.log_level)
    if args.listen_fd is not None:  # a worker of the supervisor: init was done, the port bound
        sock = socket.socket(fileno=args.listen_fd)
        asyncio.run(serve_on_socket(build_app(settings), sock, ssl_context, args.ready_fd))
        return 0
    host = args.host or settings.http.host
    port = args.port if args.port is not None else settings.http.port
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be 1-65535, got {port}")
    if args.workers is not None:
        if not 0 <= args.workers <= 256:
            raise ConfigError(f"--workers must be 0 (one per core) to 256, got {args.workers}")
        settings = replace(settings, http=replace(settings.http, workers=args.workers))
    count = settings.worker_processes
    # the port first: a bad address or a port in use is one line before init does anything
    sockets = listening_sockets(host, port, count) if count > 1 else [listening_socket(host, port)]
    report = run_async(initialise(settings, demo=args.demo))
    if report.changed:
        print_report(report)
    scheme = "https" if ssl_context else "http"
    workers = f"{count} worker processes, " if count > 1 else ""
    print(
        f"sekisho: serving on {scheme}://{host}:{port}/  ({workers}data: {settings.data_dir})",
        flush=True,
    )
    if count == 1:
        asyncio.run(serve_on_socket(build_app(settings), sockets[0], ssl_context, None))
        return 0
    os.environ["SEKISHO_HTTP_WORKERS"] = str(count)  # each worker knows its share of budgets
    config = ["--config", args.config] if args.config else []
    argv = [sys.executable, "-m", "gateway.cli.main", *config, "serve"]
    return Supervisor(sockets, argv).run()


async def serve_on_socket(
    app: web.Application,
    sock: socket.socket,
    ssl_context: ssl.SSLContext | None,
    ready_fd: int | None,
) -> None:
    """Serve ``app`` on a bound socket until SIGINT/SIGTERM, then shut down gracefully."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
        if ready_fd is not None:
            os.write(ready_fd, READY)
            os.close(ready_fd)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
