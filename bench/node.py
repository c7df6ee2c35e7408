"""Nodes for benchmarks: an in-process ledger on a fresh data directory, or a real server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.bootstrap import initialise
from gateway.cli.supervisor import ALL_READY
from gateway.config import Settings, load_settings
from gateway.db.setup import close_database, open_database
from gateway.ledger.service import LedgerService
from gateway.ledger.wiring import build_ledger
from gateway.node_token import token_config
from hsm import Token


@dataclass
class LedgerNode:
    """An initialised node with its ledger running in this process."""

    settings: Settings
    token: Token
    ledger: LedgerService


@contextlib.asynccontextmanager
async def ledger_node(database_url: str | None = None) -> AsyncIterator[LedgerNode]:
    """A fresh node in a temporary directory (SQLite unless a database URL is given)."""
    with tempfile.TemporaryDirectory(prefix="sekisho-bench-") as tmp:
        environ = {"SEKISHO_DATA": tmp, "SEKISHO_LEDGER_BATCH_MS": "2"}
        if database_url:
            environ["SEKISHO_DATABASE_URL"] = database_url
        settings = load_settings(environ=environ)
        await initialise(settings)
        await open_database(settings.database_url)
        token = await Token.open(token_config(settings))
        ledger = await build_ledger(settings, token)
        await ledger.start()
        try:
            yield LedgerNode(settings, token, ledger)
        finally:
            await ledger.stop()
            await token.close()
            await close_database()


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(
    data_dir: Path, extra: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """Run ``sekisho serve`` on a free port; yield its base URL and pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    env.update({"SEKISHO_DATA": str(data_dir), "SEKISHO_HTTP_WORKERS": "1", **(extra or {})})
    log_path = data_dir.parent / f"serve-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    single = env["SEKISHO_HTTP_WORKERS"] == "1"  # else wait until every worker accepts
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as response:  # noqa: S310
                    if response.status == 200 and (single or ALL_READY in log_path.read_text()):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start; see {log.name}")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MiB (VmRSS, or VmHWM for the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM so a later reading is the peak of what follows."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its children (a supervisor and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
