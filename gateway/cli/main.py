"""``sekisho``: entry point, argument parsing and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from gateway import __version__
from gateway.cli import (
    clients_cmd,
    custody_cmd,
    hsm_cmd,
    keys_cmd,
    ledger_cmd,
    serve_cmd,
    users_cmd,
    witness_cmd,
)
from gateway.cli.inputs import not_utf8_argument, one_line
from gateway.config import Settings, load_settings
from gateway.db.outage import causes, is_database_busy, is_database_outage, is_refused_value
from gateway.errors import ConfigError, SekishoError
from gateway.tlog.errors import FormatError
from hsm import HsmError

Command = Callable[[argparse.Namespace, Settings], int]
TRACEBACK_ENV = "SEKISHO_TRACEBACK"
"""Set to 1 to see the Python traceback of an unexpected failure (for a bug report)."""


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one ``sekisho: error: …`` line (exit 2), like every other error.

    Sub-command parsers inherit the class, so ``sekisho users add`` fails the same way.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("sekisho").strip()
        where = f"{command}: " if command else ""
        help_hint = f"see 'sekisho {command} --help'" if command else "see 'sekisho --help'"
        self.exit(2, f"sekisho: error: {where}{one_line(message)} ({help_hint})\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = OneLineParser(
        prog="sekisho", description="Sekisho secure document-distribution gateway"
    )
    parser.add_argument("--version", action="version", version=f"sekisho {__version__}")
    parser.add_argument("--config", help="TOML configuration file (default: $SEKISHO_CONFIG)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_cmd.register(commands)
    hsm_cmd.register(commands)
    users_cmd.register(commands)
    keys_cmd.register(commands)  # named signing keys plus kek_cmd's KEK commands
    clients_cmd.register(commands)
    custody_cmd.register(commands)
    ledger_cmd.register(commands)
    witness_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    given = sys.argv[1:] if argv is None else list(argv)
    bad = not_utf8_argument(given)
    if bad is not None:
        return fail(f"argument {bad} is not valid UTF-8 text (only a file name may be)", status=2)
    args = parser.parse_args(given)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        settings = _settings(args.config)
        return handler(args, settings)
    except ConfigError as exc:
        return fail(exc.message, status=2)
    except (SekishoError, FormatError, HsmError) as exc:
        return fail(exc.message)
    except OSError as exc:
        return fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if is_database_busy(exc):
            return fail(f"the database is busy, try again: {_last_cause(exc)}")
        if is_database_outage(exc):
            return fail(f"the database is unreachable: {_last_cause(exc)}")
        if is_refused_value(exc) or isinstance(exc, OverflowError):
            return fail(f"a value is too long or out of range: {_last_cause(exc)}")
        if any(isinstance(seen, sqlite3.DatabaseError) for seen in causes(exc)):
            return fail(f"the database cannot be used: {_last_cause(exc)}")
        if os.environ.get(TRACEBACK_ENV) == "1":
            raise
        # Never a traceback: one line, and how to get the details for a bug report.
        detail = str(exc) or "no detail"
        return fail(f"unexpected failure: {detail} (set {TRACEBACK_ENV}=1 for the details)")


def _settings(config: str | None) -> Settings:
    """The settings; a configuration file that is not UTF-8 text is a one-line ConfigError."""
    try:
        return load_settings(config)
    except UnicodeDecodeError:
        name = config or os.environ.get("SEKISHO_CONFIG", "")
        raise ConfigError(f"configuration file {name} is not UTF-8 text") from None


def _last_cause(exc: BaseException) -> str:
    """The innermost error's message (the driver's own words, not the ORM's wrapping)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


def fail(message: str, *, status: int = 1) -> int:
    """Print one error line (printable, at most a few hundred characters) and return the status."""
    print(f"sekisho: error: {one_line(message)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
