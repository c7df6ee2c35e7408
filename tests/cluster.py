"""Witness and gateway processes for the replication tests (real processes, loopback only)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.nodes import SEKISHO, free_port, http_get, node_env, run_cli


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early: {log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            if http_get(url + "/healthz", timeout=1)[0] == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up: {log.read_text()[-3000:]}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Process:
    """A ``sekisho`` server process with its own data directory and port."""

    data_dir: Path
    command: list[str]
    extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    vkey: str = ""

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Where its output goes."""
        return self.data_dir.parent / f"{self.data_dir.name}-{self.port}.log"

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a CLI command with this process's environment."""
        return run_cli(list(args), self.data_dir, self.extra, timeout=timeout)

    def start(self, timeout: float = 60) -> None:
        """Start and wait until /healthz answers."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*SEKISHO, *self.command, "--host", "127.0.0.1", "--port", str(self.port)],
                env=node_env(self.data_dir, self.extra),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(self.url, self.process, self.log, timeout)

    def stop(self) -> None:
        """Stop cleanly (SIGINT)."""
        _stop(self.process)

    def kill(self) -> None:
        """kill -9."""
        _stop(self.process, kill=True)

    def get_json(self, path: str, headers: Mapping[str, str] | None = None) -> Any:
        """GET a JSON resource (200 expected)."""
        status, body = http_get(self.url + path, headers=headers)
        assert status == 200, body[:500]
        return json.loads(body)


def make_witness(root: Path, name: str, extra: Mapping[str, str] | None = None) -> Process:
    """An initialised witness (not started); ``extra`` is its environment."""
    env = {"SEKISHO_WITNESS_NAME": f"{name}.witness.test", **(extra or {})}
    witness = Process(root / name, ["witness", "serve"], env)
    done = witness.cli("witness", "init")
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("witness vkey: "))
    witness.vkey = line.removeprefix("witness vkey: ").strip()
    return witness


def make_witnesses(root: Path, count: int, extra: Mapping[str, str] | None = None) -> list[Process]:
    """``count`` initialised witnesses ``w1``..., initialised in parallel."""
    with ThreadPoolExecutor(count) as pool:
        names = [f"w{n}" for n in range(1, count + 1)]
        return list(pool.map(lambda name: make_witness(root, name, extra), names))


def start_all(*processes: Process) -> None:
    """Start several processes at once."""
    with ThreadPoolExecutor(len(processes)) as pool:
        list(pool.map(lambda process: process.start(), processes))


def witness_vkey(witness: Process) -> str:
    """The verifier key ``witness init`` printed."""
    assert witness.vkey, "not a witness made by make_witness"
    return witness.vkey


def witnesses_setting(witnesses: Sequence[Process]) -> str:
    """``SEKISHO_LEDGER_WITNESSES`` for these witnesses."""
    return json.dumps(
        [{"name": w.data_dir.name, "url": w.url, "vkey": witness_vkey(w)} for w in witnesses]
    )


def make_gateway(root: Path, name: str, extra: Mapping[str, str] | None = None) -> Process:
    """An initialised gateway with an API client allowed to anchor; token in ``extra``."""
    env = {"SEKISHO_LEDGER_BATCH_MS": "2", "SEKISHO_LEDGER_AUDIT_SECONDS": "0", **(extra or {})}
    gateway = Process(root / name, ["serve"], env)
    done = gateway.cli("init")
    assert done.returncode == 0, done.stderr
    return gateway


def add_anchor_client(gateway: Process, name: str = "loader") -> str:
    """Register an anchoring API client; returns its bearer token."""
    return add_client(gateway, name, "anchor")


def add_client(gateway: Process, name: str, scopes: str) -> str:
    """Register an API client with ``scopes`` (comma-separated); returns its bearer token."""
    done = gateway.cli("clients", "add", name, "--scopes", scopes, "--rate", "0")
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if "bearer token" in ln)
    return line.rsplit(" ", 1)[1]


def log_key(gateway: Process) -> tuple[str, str]:
    """The log's origin and verifier key."""
    key = gateway.get_json("/api/v1/ledger/key")
    return str(key["origin"]), str(key["vkey"])


def add_ledger_reader(gateway: Process, path: Path, name: str = "mirror") -> str:
    """Register a ``ledger-read`` client (a mirror); its token is written to ``path`` too."""
    done = gateway.cli("clients", "add", name, "--scopes", "ledger-read")
    assert done.returncode == 0, done.stderr
    token = next(ln for ln in done.stdout.splitlines() if "bearer token" in ln).rsplit(" ", 1)[1]
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def witness_log(
    witnesses: Sequence[Process],
    gateway: Process,
    *,
    mirror: bool = False,
    token_file: Path | None = None,
) -> tuple[str, str]:
    """Make each witness witness (and maybe mirror, with ``token_file``) the gateway's log."""
    origin, vkey = log_key(gateway)
    for witness in witnesses:
        args = ["witness", "add-log", origin, vkey, "--url", gateway.url]
        if token_file is not None:
            args += ["--token-file", str(token_file)]
        done = witness.cli(*args, *(["--mirror"] if mirror else []))
        assert done.returncode == 0, done.stderr
    return origin, vkey


async def _anchor(
    session: aiohttp.ClientSession, base: str, token: str, n: int, tag: str, wait: bool
) -> dict[str, Any]:
    digest = hashlib.sha256(f"{tag}-{n}".encode()).digest()
    body = {
        "subject": f"{tag}-{n % 97}",
        "kind": "test.item",
        "digest": base64.b64encode(digest).decode(),
    }
    url = f"{base}/api/v1/anchors" + ("?wait=true" if wait else "")
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status in (201, 202), await r.text()
        result: dict[str, Any] = await r.json()
        return result


async def anchor_many(
    base: str, token: str, count: int, tag: str, *, wait: bool = False, parallel: int = 32
) -> list[dict[str, Any]]:
    """Anchor ``count`` records concurrently; the anchors API's answers."""
    limit = asyncio.Semaphore(parallel)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def one(n: int) -> dict[str, Any]:
            async with limit:
                return await _anchor(session, base, token, n, tag, wait)

        return list(await asyncio.gather(*(one(n) for n in range(count))))


@contextlib.contextmanager
def stopped_at_exit(*processes: Process) -> Iterator[None]:
    """Stop every process when the block ends, whatever happens."""
    try:
        yield
    finally:
        for process in processes:
            process.stop()
